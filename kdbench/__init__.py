"""kdbench: which knowledge-distillation method gives the best small model you can still explain?

From Python: ``kdbench.run(methods=["hinton"], epochs=1)`` runs a benchmark as ``kdbench
run`` does and returns a :class:`~kdbench.report.session.Results` (rows and tables as
pandas DataFrames); ``kdbench.load_results("results/default")`` reads a finished output
folder. The plugin-facing API lives in :mod:`kdbench.api` (which also has ``run``,
``load_results`` and ``Results``); ``kdbench.hookimpl`` is re-exported here too.
"""

import types as _types
from importlib import import_module as _import_module

from kdbench.errors import KdbenchError
from kdbench.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["KdbenchError", "hookimpl", "__version__", "run", "load_results", "Results"]


class _RunPackage(_types.ModuleType):
    """``kdbench.run`` is the run stage's package and, when called, :func:`kdbench.api.run`.

    A plain function named ``run`` here would be replaced by the package object as soon as
    anything imports ``kdbench.run.<module>`` (the import system sets the attribute), so the
    package itself is made callable instead: ``kdbench.run(...)`` runs a benchmark and
    ``kdbench.run.runner`` stays the module.
    """

    def __call__(self, *args, **kwargs):
        from kdbench.api import run

        return run(*args, **kwargs)

    @property
    def __signature__(self):  # help and notebooks show run()'s keywords
        import inspect

        from kdbench.api import run

        return inspect.signature(run)


_import_module("kdbench.run").__class__ = _RunPackage


def __getattr__(name: str):
    """``load_results`` and ``Results`` are imported on first use (they bring torch and pandas)."""
    if name in ("load_results", "Results"):
        from kdbench.report import session

        return getattr(session, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
