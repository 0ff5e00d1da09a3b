"""Content-addressed artifact store for checkpoints and explanation maps.

An artifact's key is a hash of everything that determines it, so a teacher trained
once for a (dataset, model, seed, epochs, ...) is found by every later job and run that
needs the same one. Writes are atomic (temporary file, then rename) and every artifact
carries a SHA-256 in its metadata; a file that fails the check is reported and rebuilt.

The store only ever deletes what it can prove it wrote, because ``--cache-dir`` (or
``$KDBENCH_CACHE``) may point at a folder shared with other programs:

* the root holds a ``KDBENCH_STORE`` marker, written by the first save; ``kdbench cache
  ls`` and ``prune`` refuse a non-empty folder without one;
* an entry is ``<root>/<kind>/<key>.json`` in a folder kdbench writes (:data:`KINDS`)
  whose metadata is a JSON object naming that kind and key, next to its data file
  ``<key>.pt`` (checkpoints) or ``<key>.npz`` (arrays). Any other file is never listed,
  loaded as an entry or deleted, whatever its name;
* the only temporary files removed are kdbench's own ``.<key>.<pt|json|npz>.<random>.tmp``
  in those folders, once they are an hour old (a younger one may be a run writing now).

A cache written before the marker existed is adopted (marker written, metadata added to
the map files that had none) when it is first loaded from, listed or pruned, but only
if everything in it has kdbench's shape; a folder mixed with anything else stays
unmarked until a run saves to it, and ``cache ls``/``prune`` refuse it until then.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from kdbench.config.identity import content_hash, file_sha256  # noqa: F401  (re-exported)
from kdbench.errors import ConfigError

#: The file that says "this folder is a kdbench artifact store".
MARKER_NAME = "KDBENCH_STORE"
STORE_FORMAT = 1
CHECKPOINT_KINDS = ("teachers", "students")  # store.save: <key>.pt
ARRAY_KINDS = ("maps", "featuremaps")  # store.save_arrays: <key>.npz
KINDS = CHECKPOINT_KINDS + ARRAY_KINDS
#: A kdbench temporary file younger than this may belong to a save in progress: prune leaves it.
TEMP_GRACE_S = 3600

_TEMP = re.compile(r"\.(?P<name>.+\.(?:pt|json|npz))\.[a-z0-9_]+\.tmp")  # _atomic_write's names
_MARKER_TEMP = re.compile(rf"\.{MARKER_NAME}\.[a-z0-9_]+\.tmp")
_KEY = re.compile(r"[0-9a-f]{16}")  # content_hash's keys: how an old map file without metadata is recognised
_NOT_A_STORE = ("{root} is not a kdbench artifact store (no KDBENCH_STORE marker); point --cache-dir at the "
                "kdbench cache folder, e.g. ~/.cache/kdbench")


def default_cache_dir() -> Path:
    env = os.environ.get("KDBENCH_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kdbench"


def _atomic_write(path: Path, write, before_replace=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        if before_replace is not None:
            before_replace(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_meta(path: Path) -> dict | None:
    """The metadata object, or None for anything else (missing, unreadable, not UTF-8, not JSON, not an object)."""
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return meta if isinstance(meta, dict) else None


def _proves(meta: dict | None, kind: str, key: str) -> bool:
    """Whether metadata read from ``<kind>/<key>.json`` is kdbench's own for that entry."""
    return kind in KINDS and isinstance(meta, dict) and meta.get("kind") == kind and meta.get("key") == key


def _suffix(kind: str) -> str:
    return ".npz" if kind in ARRAY_KINDS else ".pt"


def _is_plain_file(p: Path) -> bool:
    return p.is_file() and not p.is_symlink()


class ArtifactStore:
    """``<root>/<kind>/<key>.pt`` (or ``.npz``) plus ``<key>.json`` metadata with kind, key and checksum."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else default_cache_dir()
        self._adoption_tried = False

    def paths(self, kind: str, key: str) -> tuple[Path, Path]:
        base = self.root / kind / key
        return base.with_suffix(".pt"), base.with_suffix(".json")

    # ---- writing ----------------------------------------------------------------------------------

    def _claim(self, kind: str) -> None:
        if kind not in KINDS:  # prune only knows these folders: anything else would never be cleaned up
            raise ValueError(f"unknown artifact kind {kind!r}; one of {', '.join(KINDS)}")
        self._write_marker()

    def _write_marker(self) -> None:
        marker = self.root / MARKER_NAME
        if not marker.is_file():
            _atomic_write(marker, lambda tmp: Path(tmp).write_text(json.dumps(
                {"kdbench_store": STORE_FORMAT,
                 "about": "kdbench artifact store; `kdbench cache prune` deletes only its own entries"}) + "\n"))

    @staticmethod
    def _write_meta(meta_path: Path, meta: dict) -> None:
        _atomic_write(meta_path, lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=1, default=str)))

    def save(self, kind: str, key: str, state_dict: dict, meta: dict) -> Path:
        weights, meta_path = self.paths(kind, key)
        self._claim(kind)
        # The metadata goes in before the weights are renamed into place: a crash in between leaves an
        # entry the store can prove is its own (and prune as corrupt), never an unclaimed checkpoint.
        _atomic_write(weights, lambda tmp: torch.save(state_dict, tmp), before_replace=lambda tmp: self._write_meta(
            meta_path, dict(meta, sha256=file_sha256(tmp), key=key, kind=kind)))
        return weights

    def save_arrays(self, kind: str, key: str, arrays: dict) -> Path:
        """Small named arrays (e.g. explanation maps for figures), as an npz written atomically, with metadata."""
        import numpy as np

        path = self.root / kind / f"{key}.npz"
        self._claim(kind)

        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez_compressed(f, **arrays)

        _atomic_write(path, write, before_replace=lambda tmp: self._write_meta(
            path.with_suffix(".json"), {"kind": kind, "key": key, "sha256": file_sha256(tmp), "arrays": sorted(arrays)}))
        return path

    # ---- reading ----------------------------------------------------------------------------------

    def load(self, kind: str, key: str) -> tuple[dict, dict] | None:
        """Return ``(state_dict, meta)``, or None when absent, not kdbench's, or corrupt (with a warning)."""
        self._adopt_once()
        weights, meta_path = self.paths(kind, key)
        if not (weights.is_file() and meta_path.is_file()):
            return None
        meta = _read_meta(meta_path)
        if not _proves(meta, kind, key):
            return None  # not an entry of this store: left alone (a save of this key replaces it)
        try:
            if meta.get("sha256") != file_sha256(weights):
                raise ValueError("checksum mismatch")
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as exc:
            warnings.warn(f"cached {kind} {key} is corrupt ({exc}); rebuilding it", stacklevel=2)
            for p in (weights, meta_path):
                p.unlink(missing_ok=True)
            return None
        return state, meta

    def load_arrays(self, kind: str, key: str) -> dict | None:
        """The arrays, or None when absent, unreadable or failing their checksum (map files from before the
        metadata existed are read without one)."""
        import numpy as np

        self._adopt_once()
        path = self.root / kind / f"{key}.npz"
        if not path.is_file():
            return None
        meta = _read_meta(path.with_suffix(".json"))
        try:
            if _proves(meta, kind, key) and meta.get("sha256") != file_sha256(path):
                return None
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        except Exception:  # noqa: BLE001  (a damaged figure input only costs the figure)
            return None

    # ---- listing and pruning ----------------------------------------------------------------------

    def check_root(self) -> None:
        """Refuse (ConfigError) a non-empty folder that is not a kdbench store; adopt an old kdbench cache.

        An absent or empty root is an empty store.
        """
        root = self.root
        if (root / MARKER_NAME).is_file() or not (root.exists() or root.is_symlink()):
            return
        try:
            empty = root.is_dir() and next(root.iterdir(), None) is None
        except OSError as exc:
            raise ConfigError(f"cannot read the artifact store {root}: {exc.strerror or exc}") from None
        if empty or (root.is_dir() and self._adopt()):
            return
        raise ConfigError(_NOT_A_STORE.format(root=root))

    def entries(self) -> list["Artifact"]:
        """Every artifact the store can prove it wrote, with its size, age and whether its checksum holds."""
        out = []
        for kind in KINDS:
            folder = self.root / kind
            if not folder.is_dir():
                continue
            for meta_path in folder.glob("*.json"):
                key = meta_path.stem
                meta = _read_meta(meta_path)
                if not _proves(meta, kind, key):
                    continue  # not ours: never listed, never deleted
                data = meta_path.with_suffix(_suffix(kind))
                try:
                    present = _is_plain_file(data)
                    ok = present and meta.get("sha256") == file_sha256(data)
                    size = data.stat().st_size if present else 0
                    mtime = meta_path.stat().st_mtime
                except OSError:  # removed or unreadable under our feet
                    ok, size, mtime = False, 0, 0.0
                out.append(Artifact(kind, key, data, size, mtime, ok, meta))
        return sorted(out, key=lambda a: (a.kind, a.key))

    def prune(self, *, older_than_days: float | None = None, kind: str | None = None,
              everything: bool = False) -> list[Path]:
        """Delete corrupt artifacts and leftover temporary files; with options, also old or all ones.

        Only entries listed by :meth:`entries` and kdbench's own temporary files are ever deleted.
        """
        if older_than_days is not None and not (math.isfinite(older_than_days) and older_than_days >= 0):
            raise ConfigError(f"--older-than {older_than_days} must be a finite number of days >= 0, e.g. 30")
        if kind is not None and kind not in KINDS:
            raise ConfigError(f"unknown artifact kind {kind!r}; one of {', '.join(KINDS)}")
        self.check_root()
        removed: list[Path] = []
        now = time.time()
        for a in self.entries():
            if kind and a.kind != kind:
                continue
            old = older_than_days is not None and now - a.mtime > older_than_days * 86400
            if everything or old or not a.ok:
                for p in (a.path, a.path.with_suffix(".json")):  # data first: metadata alone is still provably ours
                    if self._remove(p):
                        removed.append(p)
        for tmp in self._leftover_temps(kind, now):
            if self._remove(tmp):
                removed.append(tmp)
        return removed

    def _leftover_temps(self, kind: str | None, now: float) -> list[Path]:
        if not self.root.is_dir():
            return []
        found = [f for f in self.root.iterdir() if kind is None and _MARKER_TEMP.fullmatch(f.name)]
        for k in [kind] if kind else KINDS:
            folder = self.root / k
            if folder.is_dir():
                found += [f for f in folder.iterdir() if _TEMP.fullmatch(f.name)]
        out = []
        for f in sorted(found):
            try:
                if _is_plain_file(f) and now - f.stat().st_mtime > TEMP_GRACE_S:
                    out.append(f)
            except OSError:
                continue
        return out

    @staticmethod
    def _remove(p: Path) -> bool:
        if not (p.is_file() or p.is_symlink()):
            return False
        try:
            p.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise ConfigError(f"cannot delete {p}: {exc.strerror or exc}") from None
        return True

    # ---- caches from before the marker --------------------------------------------------------------

    def _adopt_once(self) -> None:
        if not self._adoption_tried:
            self._adoption_tried = True
            if self.root.is_dir() and not (self.root / MARKER_NAME).is_file():
                self._adopt()

    def _adopt(self) -> bool:
        """Mark an unmarked root holding nothing but kdbench-shaped entries (a cache from before the marker).

        kdbench-shaped: only kind folders (and kdbench temporary files); in them, metadata that proves its
        entry, data files next to such metadata, kdbench temporary files, and data files without metadata
        named like a key (older kdbench wrote maps without metadata, which is added now).
        """
        unclaimed = []
        try:
            children = list(self.root.iterdir())
            for c in children:
                folder = c.name in KINDS and c.is_dir() and not c.is_symlink()
                if not folder and not (_MARKER_TEMP.fullmatch(c.name) and _is_plain_file(c)):
                    return False
            for folder in children:
                if folder.name not in KINDS:
                    continue
                kind = folder.name
                for f in folder.iterdir():
                    if not _is_plain_file(f):
                        return False
                    if _TEMP.fullmatch(f.name):
                        continue
                    if f.suffix == ".json":
                        if not _proves(_read_meta(f), kind, f.stem):
                            return False
                    elif f.suffix == _suffix(kind):
                        if not f.with_suffix(".json").exists():
                            if not _KEY.fullmatch(f.stem):
                                return False
                            unclaimed.append((kind, f))
                    else:
                        return False
            for kind, f in unclaimed:
                self._write_meta(f.with_suffix(".json"),
                                 {"kind": kind, "key": f.stem, "sha256": file_sha256(f), "adopted": True})
            self._write_marker()
        except OSError:
            return False
        return True


@dataclass
class Artifact:
    kind: str
    key: str
    path: Path
    size: int
    mtime: float
    ok: bool
    meta: dict
