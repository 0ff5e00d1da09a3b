"""Content-addressed artifact store for checkpoints.

An artifact's key is a hash of everything that determines it, so a teacher trained
once for a (dataset, model, seed, epochs, ...) is found by every later job and run that
needs the same one. Writes are atomic (temporary file, then rename) and every artifact
carries a SHA-256 in its metadata; a file that fails the check is reported and rebuilt.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from kdbench.config.identity import content_hash, file_sha256  # noqa: F401  (re-exported)


def default_cache_dir() -> Path:
    env = os.environ.get("KDBENCH_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kdbench"


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class ArtifactStore:
    """``<root>/<kind>/<key>.pt`` plus ``<key>.json`` metadata with its checksum."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else default_cache_dir()

    def paths(self, kind: str, key: str) -> tuple[Path, Path]:
        base = self.root / kind / key
        return base.with_suffix(".pt"), base.with_suffix(".json")

    def save(self, kind: str, key: str, state_dict: dict, meta: dict) -> Path:
        weights, meta_path = self.paths(kind, key)
        _atomic_write(weights, lambda tmp: torch.save(state_dict, tmp))
        meta = dict(meta, sha256=file_sha256(weights), key=key, kind=kind)
        _atomic_write(meta_path, lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=1, default=str)))
        return weights

    def load(self, kind: str, key: str) -> tuple[dict, dict] | None:
        """Return ``(state_dict, meta)``, or None when absent or corrupt (with a warning)."""
        weights, meta_path = self.paths(kind, key)
        if not (weights.exists() and meta_path.exists()):
            return None
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("sha256") != file_sha256(weights):
                raise ValueError("checksum mismatch")
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as exc:
            warnings.warn(f"cached {kind} {key} is corrupt ({exc}); rebuilding it", stacklevel=2)
            for p in (weights, meta_path):
                p.unlink(missing_ok=True)
            return None
        return state, meta

    def save_arrays(self, kind: str, key: str, arrays: dict) -> Path:
        """Small named arrays (e.g. explanation maps for figures), as an npz written atomically."""
        import numpy as np

        path = self.root / kind / f"{key}.npz"
        _atomic_write(path, lambda tmp: np.savez_compressed(open(tmp, "wb"), **arrays))
        return path

    def load_arrays(self, kind: str, key: str) -> dict | None:
        import numpy as np

        path = self.root / kind / f"{key}.npz"
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        except (OSError, ValueError):
            return None

    def entries(self) -> list["Artifact"]:
        """Every stored artifact, with its size, age and whether its checksum holds."""
        out = []
        if not self.root.exists():
            return out
        for meta_path in sorted(self.root.glob("*/*.json")):
            weights = meta_path.with_suffix(".pt")
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                meta = {}
            ok = weights.exists() and meta.get("sha256") == file_sha256(weights)
            size = weights.stat().st_size if weights.exists() else 0
            out.append(Artifact(meta_path.parent.name, meta_path.stem, weights, size,
                                meta_path.stat().st_mtime, ok, meta))
        return out

    def prune(self, *, older_than_days: float | None = None, kind: str | None = None,
              everything: bool = False) -> list[Path]:
        """Delete corrupt artifacts and leftover temporary files; with options, also old or all ones."""
        removed = []
        now = time.time()
        for a in self.entries():
            if kind and a.kind != kind:
                continue
            old = older_than_days is not None and now - a.mtime > older_than_days * 86400
            if everything or old or not a.ok:
                for p in (a.path, a.path.with_suffix(".json")):
                    if p.exists():
                        p.unlink()
                        removed.append(p)
        for tmp in self.root.glob("*/.*.tmp") if self.root.exists() else []:
            tmp.unlink()
            removed.append(tmp)
        return removed


@dataclass
class Artifact:
    kind: str
    key: str
    path: Path
    size: int
    mtime: float
    ok: bool
    meta: dict
