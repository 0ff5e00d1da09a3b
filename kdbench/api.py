"""kdbench's public API: everything a plugin, a script or a notebook may import, in one place.

This module is a public, versioned interface (semantic versioning from 1.0; until then a
breaking change is announced in the changelog and bumps the minor version). Anything not
listed in ``__all__`` is internal and may change without notice.

- Hooks: :data:`hookimpl` marks a plugin's hook implementations; the hooks are
  ``register_datasets``, ``register_models``, ``register_methods``,
  ``register_explainers``, ``register_metrics``, ``on_result``, ``on_run_start`` and
  ``on_run_end`` (see :mod:`kdbench.hookspecs` for their contracts).
- Contracts: :class:`Distiller` (KD methods), :class:`DatasetBundle`,
  :class:`DatasetInfo`, :class:`Split` and the task names :data:`TASKS` (``BINARY``,
  ``MULTICLASS``, ``MULTILABEL``) (datasets), :class:`Explainer`
  (``explain(model, x, target) -> Tensor (B,1,H,W)``, checked by :func:`check_explainer`),
  :class:`XaiMetric` (explanation metrics). docs/writing-plugins.md states each in full.
- Helpers for methods and explainers: :class:`FeatureTap`, :func:`feature_modules`,
  :func:`pick_module`, :func:`as_map`, :func:`align`, :func:`gradcam_layer`,
  :func:`task_loss`, :func:`kd_loss`, :func:`hard_targets`, :func:`standardise`,
  :func:`require` (for ``Distiller.check_options``).
- Errors: :class:`KdbenchError` and :class:`NotApplicableError`,
  :class:`UnsupportedTaskError`, :class:`ConfigError`, :class:`DataError`.
- Running: :func:`run` (``kdbench run`` as a function, also ``kdbench.run(...)``),
  :func:`load_results` and :class:`Results` (rows and tables as pandas DataFrames).
- Testing: :mod:`kdbench.testing` (the ``kdbench_tiny_run`` pytest fixture).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import torch
from torch import nn

from kdbench.data.contract import TASKS, DatasetBundle, DatasetInfo, Split, standardise
from kdbench.distill.features import (
    FeatureTap,
    align,
    as_map,
    feature_modules,
    pick_module,
)
from kdbench.distill.gradcam import gradcam_layer
from kdbench.distill.losses import hard_targets, kd_loss, task_loss
from kdbench.distill.methods.base import Distiller, require
from kdbench.errors import (
    ConfigError,
    DataError,
    KdbenchError,
    NotApplicableError,
    UnsupportedTaskError,
)
from kdbench.explain.metrics import XaiMetric
from kdbench.hookspecs import hookimpl

if TYPE_CHECKING:  # imported on first use: a plugin importing this module does not load the runner
    import pandas as pd

    from kdbench.report.session import Results, load_results

API_VERSION = "0.1"

#: The task names a :class:`DatasetInfo` may carry (``TASKS`` holds all three).
BINARY, MULTICLASS, MULTILABEL = TASKS

__all__ = [
    "API_VERSION", "hookimpl", "Distiller", "DatasetBundle", "DatasetInfo", "Split", "standardise", "XaiMetric",
    "TASKS", "BINARY", "MULTICLASS", "MULTILABEL", "Explainer", "check_explainer",
    "FeatureTap", "feature_modules", "pick_module", "as_map", "align", "gradcam_layer", "task_loss", "kd_loss",
    "hard_targets", "require",
    "KdbenchError", "NotApplicableError", "UnsupportedTaskError", "ConfigError", "DataError",
    "run", "load_results", "Results",
]


class Explainer(Protocol):
    """The explainer contract (docs/writing-plugins.md, "The explainer contract").

    ``explain(model, x, target)`` gets the model in eval mode (treat it as read-only),
    a standardised batch ``x`` (B, C, H, W) on the model's device and ``target`` (B,) int64:
    the class to explain per image (multilabel: the label the model scores highest). It
    returns one map per image, a float tensor (B, 1, H, W) the size of the input; larger
    means more relevant to the target, in any scale (kdbench normalises each map on its
    own). Quantus calls it again on perturbed inputs, other targets and randomised copies
    of the model, with any batch size: it must be a pure function of its arguments. Raise
    :class:`NotApplicableError` for a model it cannot explain.
    """

    def __call__(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor: ...


def check_explainer(explain: Explainer, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Call ``explain`` the ways kdbench and Quantus do and check the contract; return its maps.

    Checks that the maps are a finite float tensor of shape (B, 1, H, W), that a second
    call on the same inputs gives the same maps (Quantus compares maps across calls), that
    a batch of one image works, and that the model is left in eval mode with its weights
    unchanged. Raises :class:`KdbenchError` naming the rule broken. For a plugin's tests::

        maps = check_explainer(my_explainer, model, x, torch.zeros(len(x), dtype=torch.long))
    """
    name = getattr(explain, "__name__", type(explain).__name__)
    model = model.eval()
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def call(xb, tb):
        a = explain(model, xb, tb)
        expected = (xb.shape[0], 1, *xb.shape[-2:])
        if not isinstance(a, torch.Tensor) or tuple(a.shape) != expected:
            got = tuple(a.shape) if hasattr(a, "shape") else type(a).__name__
            raise KdbenchError(f"explainer {name} returned {got}, expected a tensor of shape {expected}")
        if not a.is_floating_point():
            raise KdbenchError(f"explainer {name} returned {a.dtype} maps; return a float tensor")
        if not torch.isfinite(a).all():
            raise KdbenchError(f"explainer {name} returned maps with NaN or infinite values")
        if model.training:
            raise KdbenchError(f"explainer {name} left the model in train mode; leave it as given (eval)")
        return a.detach().float().cpu()

    first = call(x, target)
    again = call(x, target)
    tolerance = 1e-5 * float(first.abs().max()) + 1e-8
    if not torch.allclose(first, again, rtol=1e-4, atol=tolerance):
        raise KdbenchError(f"explainer {name} gave different maps for the same model, images and targets; "
                           f"Quantus calls it again and compares, so it must be a pure function (seed any noise "
                           f"from the input)")
    call(x[:1], target[:1])
    for key, value in model.state_dict().items():
        if key in before and not torch.equal(value.detach(), before[key]):
            raise KdbenchError(f"explainer {name} changed the model ({key}); treat the model as read-only")
    return first


def run(*, config: str | Path | None = None, datasets=None, teachers=None, students=None, methods=None,
        explainers=None, seeds=None, fractions=None, epochs: int | None = None, teacher_epochs: int | None = None,
        batch_size: int | None = None, lr: float | None = None, device: str | None = None,
        dry_run: bool = False, out: str | Path | None = None, plugins=(), method_options: dict | None = None,
        dataset_options: dict | None = None, plugin_settings: dict | None = None,
        teacher_checkpoint: str | Path | None = None, teacher_pretrained: bool | None = None,
        data_root: str | Path | None = None, amp: bool | None = None, augment: bool | None = None,
        teacher_augment: bool | None = None, teacher_selection: str | None = None,
        xai_samples: int | None = None, xai_profile: str | None = None, featuremap_figures: bool | None = None,
        cache_dir: str | Path | None = None, baseline: bool | None = None, force: bool = False,
        retry_failed: bool = False, quiet: bool = True, executor: str = "local", ray_address: str | None = None,
        ray_cpus_per_task: int = 1) -> Results | pd.DataFrame:
    """Run a benchmark, as ``kdbench run`` does, and return its :class:`Results`.

    Every option of ``kdbench run`` is a keyword here (``--method-opt hinton.T=2`` is
    ``method_options={"hinton": {"T": 2}}``, ``--plugin-opt`` is ``plugin_settings``,
    ``--plugin m`` is ``plugins=["m"]``, ``--no-baseline`` is ``baseline=False``); None
    means "not given": the ``config`` file's value, else kdbench's default. Lists may be
    Python lists or comma-separated text. ``config`` is a benchmark TOML file or the name
    of one in ``benchmarks/`` (``"breastmnist"``). ``out`` defaults to
    ``results/<benchmark name>``; as with the CLI, a second call with the same ``out``
    skips the jobs that have rows (``force=True`` re-runs them). ``quiet=False`` shows
    progress bars. ``dry_run=True`` checks everything, trains and writes nothing, and
    returns the plan instead: a DataFrame with one row per job (its ids, ``state``: done,
    failed or to run, ``teacher_cached`` and ``config_hash``).

    Writes what the command writes (runs.jsonl, the tables, plots and figures). Bad input
    raises the :class:`KdbenchError` whose message the command prints, before anything is
    trained; a job that fails is a row of ``.failed`` and the others still run. Warnings
    (a broken plugin, a figure that could not be drawn) are issued as Python warnings and
    kept in ``.warnings``. Ctrl-C stops the run between jobs; the finished rows are kept.
    """
    import warnings

    from kdbench.plugins import load_plugins
    from kdbench.report.session import (
        benchmark_from_options,
        outcome_results,
        plan_benchmark,
        run_benchmark,
    )
    from kdbench.run import interrupts
    from kdbench.run.progress import Reporter, RichReporter

    bench = benchmark_from_options(
        config, method_options=method_options, dataset_options=dataset_options, plugin_settings=plugin_settings,
        datasets=datasets, teachers=teachers, students=students, methods=methods, explainers=explainers,
        seeds=seeds, fractions=fractions, epochs=epochs, teacher_epochs=teacher_epochs, batch_size=batch_size,
        lr=lr, device=device, teacher_checkpoint=teacher_checkpoint, teacher_pretrained=teacher_pretrained,
        data_root=data_root, augment=augment, teacher_augment=teacher_augment,
        teacher_selection=teacher_selection, amp=amp, featuremap_figures=featuremap_figures,
        xai_samples=xai_samples, xai_profile=xai_profile, baseline=baseline)
    modules = [plugins] if isinstance(plugins, str) else list(plugins or ())
    loaded = load_plugins(modules)
    notes = [f"plugin {i.name} ({i.label}) failed to load: {i.error}" for i in loaded.broken]
    out_dir = Path(out) if out not in (None, "") else Path("results") / bench.name
    if dry_run:
        for message in notes:
            warnings.warn(message, stacklevel=2)
        return plan_benchmark(bench, loaded, out_dir, cache_dir=cache_dir, force=force, retry_failed=retry_failed)
    if quiet:
        reporter = Reporter()
    else:
        from rich.console import Console

        reporter = RichReporter(Console(stderr=True))
    previous = interrupts.install()  # Ctrl-C is never lost inside a __del__: the run stops between jobs
    try:
        done = run_benchmark(bench, loaded, out_dir, reporter=reporter, cache_dir=cache_dir, force=force,
                             retry_failed=retry_failed, executor=executor, ray_address=ray_address,
                             ray_cpus_per_task=ray_cpus_per_task, plugin_modules=modules)
    finally:
        interrupts.restore(previous)
    results = outcome_results(done, warnings=notes)
    for message in results.warnings:
        warnings.warn(message, stacklevel=2)
    if done.summary.failed:
        warnings.warn(f"{done.summary.failed} jobs failed (the others ran); see .failed, whose error column "
                      f"says why", stacklevel=2)
    return results


def __getattr__(name: str):
    """``Results`` and ``load_results`` are imported on first use (they bring the runner and pandas)."""
    if name in ("Results", "load_results"):
        from kdbench.report import session

        return getattr(session, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
