"""kdbench: which knowledge-distillation method gives the best small model you can still explain?

The plugin-facing API lives in :mod:`kdbench.api`; ``kdbench.hookimpl`` is re-exported
here so that a plugin can be written as ``import kdbench`` + ``@kdbench.hookimpl``.
"""

from kdbench.errors import KdbenchError
from kdbench.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["KdbenchError", "hookimpl", "__version__"]
