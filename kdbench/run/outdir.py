"""The output folder is kdbench's alone: never write through a link planted in it.

runs.jsonl, the training logs, the tables and the figures are opened by name inside
``--out``. A symbolic link placed there (by another user of a shared folder, or left by
an earlier tool) would make kdbench truncate or append to whatever the link points at,
so a run refuses such a folder before writing anything. The folder itself may be a link:
the user chose it.
"""

from __future__ import annotations

import os
from pathlib import Path

from kdbench.errors import ConfigError


def refuse_links_inside(out_dir: str | Path) -> None:
    """Raise :class:`ConfigError` naming the first symbolic link found inside ``out_dir``."""
    root = Path(out_dir)
    if not root.is_dir():
        return
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in sorted(dirs) + sorted(files):
            path = Path(folder) / name
            if path.is_symlink():
                raise ConfigError(f"{path} is a symbolic link; kdbench never writes through links in its output "
                                  f"folder (the target would be overwritten): remove the link or choose another --out")


def refuse_unusable_out(out_dir: str | Path) -> None:
    """Raise :class:`ConfigError` when ``out_dir`` is a file or lies under one: what a run would refuse.

    ``--dry-run`` writes nothing, not even the lock, so it checks this without creating the folder.
    """
    path = Path(out_dir)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                where = "is a file" if p == path else f"lies under {p}, which is a file"
                raise ConfigError(f"output directory {path} {where}; choose another --out")
            return
