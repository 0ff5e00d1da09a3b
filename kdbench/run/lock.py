"""One writer per output directory: a lock file holding the writer's pid and host.

A second kdbench process on the same output directory refuses to start. A lock left by
a process that no longer exists (killed, machine lost) is stale: it is replaced with a
warning, so a crashed run never blocks its own resume.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from kdbench.errors import ConfigError

LOCK_NAME = ".kdbench.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    def __init__(self, out_dir: str | Path):
        self.path = Path(out_dir) / LOCK_NAME
        self.stale_warning = ""

    def acquire(self) -> "RunLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create output directory {self.path.parent}: {exc.strerror}; "
                              f"choose another --out") from None
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder.get("host") == me["host"] and holder.get("pid") and _alive(int(holder["pid"])):
                    raise ConfigError(f"another kdbench run (pid {holder['pid']}) is writing to {self.path.parent}; "
                                      f"wait for it to finish or use another --out") from None
                if holder.get("host") not in (None, me["host"]):
                    raise ConfigError(f"{self.path.parent} is locked by a kdbench run on host {holder['host']} "
                                      f"(pid {holder.get('pid')}); if that run is gone, delete {self.path}") from None
                self.stale_warning = f"removed a stale lock left by pid {holder.get('pid')} (no longer running)"
                self.path.unlink(missing_ok=True)
                continue
            except PermissionError:
                raise ConfigError(f"output directory {self.path.parent} is not writable; choose another --out") \
                    from None
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            return self
        raise ConfigError(f"cannot take the lock {self.path}; delete it if no kdbench run is using {self.path.parent}")

    def _holder(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def release(self) -> None:
        if self._holder().get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
