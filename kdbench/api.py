"""kdbench's plugin-facing API: everything a plugin may import, in one place.

This module is a public, versioned interface (semantic versioning from 1.0; until then a
breaking change is announced in the changelog and bumps the minor version). Anything not
listed in ``__all__`` is internal and may change without notice.

- Hooks: :data:`hookimpl` marks a plugin's hook implementations; the hooks are
  ``register_datasets``, ``register_models``, ``register_methods``,
  ``register_explainers``, ``register_metrics``, ``on_result``, ``on_run_start`` and
  ``on_run_end`` (see :mod:`kdbench.hookspecs` for their contracts).
- Contracts: :class:`Distiller` (KD methods), :class:`DatasetBundle`,
  :class:`DatasetInfo`, :class:`Split` (datasets), :class:`XaiMetric` (explanation
  metrics); an explainer is any ``explain(model, x, target) -> Tensor (B,1,H,W)``.
- Helpers for methods and explainers: :class:`FeatureTap`, :func:`feature_modules`,
  :func:`pick_module`, :func:`as_map`, :func:`align`, :func:`gradcam_layer`,
  :func:`task_loss`, :func:`kd_loss`, :func:`standardise`.
- Errors: :class:`KdbenchError` and :class:`NotApplicableError`,
  :class:`UnsupportedTaskError`, :class:`ConfigError`, :class:`DataError`.
- Testing: :mod:`kdbench.testing` (the ``kdbench_tiny_run`` pytest fixture).
"""

from kdbench.data.contract import DatasetBundle, DatasetInfo, Split, standardise
from kdbench.distill.features import (
    FeatureTap,
    align,
    as_map,
    feature_modules,
    pick_module,
)
from kdbench.distill.gradcam import gradcam_layer
from kdbench.distill.losses import kd_loss, task_loss
from kdbench.distill.methods.base import Distiller
from kdbench.errors import (
    ConfigError,
    DataError,
    KdbenchError,
    NotApplicableError,
    UnsupportedTaskError,
)
from kdbench.explain.metrics import XaiMetric
from kdbench.hookspecs import hookimpl

API_VERSION = "0.1"

__all__ = [
    "API_VERSION", "hookimpl", "Distiller", "DatasetBundle", "DatasetInfo", "Split", "standardise", "XaiMetric",
    "FeatureTap", "feature_modules", "pick_module", "as_map", "align", "gradcam_layer", "task_loss", "kd_loss",
    "KdbenchError", "NotApplicableError", "UnsupportedTaskError", "ConfigError", "DataError",
]
