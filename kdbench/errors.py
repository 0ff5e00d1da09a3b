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


class StorageError(KdbenchError):
    """Out of disk space (or a write the file system refuses): never a job's fault.

    It stops the run with exit status 2 instead of becoming a failed row that a re-run
    would skip; the rows written before are kept and the same command resumes.
    """


#: errno values that mean "the disk, not the job": full, over quota, read-only, file too large.
STORAGE_ERRNOS = frozenset({28, 122, 30, 27})  # ENOSPC, EDQUOT, EROFS, EFBIG


def storage_failure(exc: BaseException) -> StorageError | None:
    """The :class:`StorageError` for an exception caused by the disk, or None for anything else."""
    while exc is not None:
        if isinstance(exc, StorageError):
            return exc
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
            where = f" writing {exc.filename}" if exc.filename else ""
            return StorageError(f"{exc.strerror or exc}{where}; the rows written before are kept, "
                                f"free space and run the same command again to resume")
        exc = exc.__cause__ or exc.__context__
    return None
