"""One exception family for every mistake a user can fix.

The CLI turns a :class:`KdbenchError` into one line on stderr and exit status 2,
without a traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class KdbenchError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class ConfigError(KdbenchError):
    """A benchmark file, CLI flag or option value is malformed."""


class UnknownNameError(KdbenchError):
    """A component name that no plugin registered."""


class DuplicateNameError(KdbenchError):
    """Two plugins registered the same component name."""


class DataError(KdbenchError):
    """A dataset file or folder is missing or malformed."""


class UnsupportedTaskError(KdbenchError):
    """A component cannot handle the dataset's task (binary/multiclass/multilabel)."""


class NotApplicableError(KdbenchError):
    """An explainer or metric does not apply to this model or input (recorded, not fatal)."""
