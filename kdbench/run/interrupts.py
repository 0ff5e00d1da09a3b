"""Ctrl-C that is never lost.

Python turns SIGINT into a KeyboardInterrupt wherever the main thread happens to be; when
that is inside a ``__del__`` or a garbage-collector callback, the exception is printed as
"ignored" and the run goes on as if nothing happened. The handler below also records the
request, and the runner checks it between jobs, so an interrupt always stops the run
(exit 130, finished rows kept).
"""

from __future__ import annotations

import signal
import threading

_requested = threading.Event()


def _handler(signum, frame):
    _requested.set()
    raise KeyboardInterrupt


def install():
    """Install the recording handler; returns the previous one (None off the main thread)."""
    _requested.clear()
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, _handler)


def restore(previous) -> None:
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, previous)


def check() -> None:
    """Raise KeyboardInterrupt if an interrupt was requested, even one swallowed on the way."""
    if _requested.is_set():
        raise KeyboardInterrupt
