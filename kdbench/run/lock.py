"""One writer per output directory: an OS lock on ``<out>/.kdbench.lock``, held for the run's lifetime.

The lock is ``flock`` on an open descriptor of the file: the kernel grants it to exactly one
process at a time and drops it when that process ends, however it ends (killed, crashed,
machine rebooted), so there is no stale lock to detect or replace, and a crashed run never
blocks its own resume. The file's content (the holder's pid and host) only feeds the error
message; it is never trusted, so whatever an earlier run or anything else left in it does
not matter. Releasing removes the file while still holding the lock; a process that locked
the file just before it was removed sees that it no longer names the path and tries again.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
from pathlib import Path

from kdbench.errors import ConfigError

LOCK_NAME = ".kdbench.lock"
_BUSY = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES}


class RunLock:
    def __init__(self, out_dir: str | Path):
        self.path = Path(out_dir) / LOCK_NAME
        self.stale_warning = ""  # kept for callers: the OS lock leaves nothing stale to replace
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        if self._fd is not None:
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create output directory {self.path.parent}: {exc.strerror}; "
                              f"choose another --out") from None
        for _ in range(100):  # each retry means a holder released between our open and our lock
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except PermissionError:
                raise ConfigError(f"output directory {self.path.parent} is not writable; choose another --out") \
                    from None
            except OSError as exc:
                raise ConfigError(f"cannot create the lock file {self.path}: {exc.strerror}; "
                                  f"choose another --out") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in _BUSY:
                    raise ConfigError(self._busy_message()) from None
                raise ConfigError(f"cannot lock {self.path}: {exc.strerror}; "
                                  f"use an --out on a local file system") from None
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except OSError:
                same = False
            if not same:  # locked a file that its holder removed on release: start over
                os.close(fd)
                continue
            self._fd = fd
            self._record(fd)
            return self
        raise ConfigError(f"cannot take the lock {self.path}; too many kdbench runs are starting on "
                          f"{self.path.parent} at once")

    @staticmethod
    def _record(fd: int) -> None:
        """Write our pid and host into the file, for the message another run prints (best effort)."""
        me = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, me, 0)
        except OSError:
            pass

    def _holder(self) -> dict:
        try:
            with open(self.path, "rb") as f:
                holder = json.loads(f.read(4096).decode("utf-8"))
        except (OSError, ValueError, RecursionError):
            return {}
        return holder if isinstance(holder, dict) else {}

    def _busy_message(self) -> str:
        holder = self._holder()
        pid = holder.get("pid")
        who = f"pid {pid}" if isinstance(pid, int) and not isinstance(pid, bool) else "pid unknown"
        host = holder.get("host")
        if isinstance(host, str) and host and host != socket.gethostname():
            who += f" on host {host}"
        return (f"another kdbench run ({who}) is writing to {self.path.parent}; "
                f"wait for it to finish or use another --out")

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                self.path.unlink()  # while still locked: see the module docstring
        except OSError:
            pass
        finally:
            os.close(fd)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
