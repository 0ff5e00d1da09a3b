"""Hook specifications: the whole contract between kdbench and its plugins.

Every component kind has one register-callback hook (the shape simonw/llm uses): the
plugin receives a ``register(name, factory, help=..., **meta)`` function and calls it
once per component. Built-in components are registered through these very hooks, so a
third-party plugin has exactly the same powers as kdbench itself.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("kdbench")
hookimpl = pluggy.HookimplMarker("kdbench")


@hookspec
def register_datasets(register):
    """Register dataset factories.

    ``register(name, factory, help=...)`` where ``factory(arg, *, seed, **options)``
    returns a :class:`kdbench.data.contract.DatasetBundle`. ``arg`` is the part after the colon
    of a dataset spec (``medmnist:pneumoniamnist`` gives ``"pneumoniamnist"``) or None.
    """


@hookspec
def register_models(register):
    """Register model factories usable as teacher or student.

    ``register(name, factory, help=...)`` where
    ``factory(num_classes, in_chans, image_size, pretrained) -> nn.Module``.
    Any timm model name also works without registration.
    """


@hookspec
def register_methods(register):
    """Register KD methods: subclasses of :class:`kdbench.distill.methods.Distiller`."""


@hookspec
def register_explainers(register):
    """Register explainers: callables ``explain(model, x, target) -> Tensor (B,1,H,W)``."""


@hookspec
def register_metrics(register):
    """Register explanation metrics (see :mod:`kdbench.explain.metrics`)."""


@hookspec
def on_result(row):
    """Observe every finished result row (a flat dict) right after it is stored.

    Reporters (MLflow, W&B, a Slack bot) implement this. An exception raised here is
    reported as a warning and never loses the row.
    """


@hookspec
def on_run_start(settings, out_dir):
    """A run starts writing to ``out_dir``.

    ``settings`` holds the benchmark's ``[plugins.<name>]`` tables (and ``--plugin-opt
    NAME.KEY=VALUE`` flags) by plugin name; a plugin reads its own entry, e.g. a reporter
    its tracking URI. Reporters should stay inactive when they find no settings.
    """


@hookspec
def on_run_end(out_dir, paths):
    """A run finished; ``paths`` are the tables, plots and figures it wrote."""
