"""``folder:<path>``: images sorted into one sub-folder per class.

If ``<path>`` holds ``train/``, ``val/`` and ``test/`` sub-trees (each with one folder per
class), those are the splits; otherwise the images are split 70/10/20, stratified by
class, with ``data_seed``. The brain-tumour and eye-disease sets of the transparency
study come this way. 16-bit images are scaled by their bit depth, not clipped (see
:func:`kdbench.data.images.read_images`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from kdbench.data.common import split_indices
from kdbench.data.contract import DatasetInfo, Split, standardise
from kdbench.data.images import IMAGE_SUFFIXES, check_image_size, read_images
from kdbench.errors import DataError


def _class_files(root: Path, classes: list[str] | None = None) -> tuple[list[str], list[Path], list[int]]:
    dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    names = classes or [d.name for d in dirs]
    if not names:
        raise DataError(f"folder dataset: {root} has no class sub-folders; expected {root}/<class>/<image files>")
    files, labels = [], []
    for k, name in enumerate(names):
        folder = root / name
        found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
        if not found:
            raise DataError(f"folder dataset: class folder {folder} holds no images "
                            f"({', '.join(sorted(IMAGE_SUFFIXES))})")
        files += found
        labels += [k] * len(found)
    return names, files, labels


def folder(arg=None, *, seed: int = 0, image_size: int = 64, channels: int | None = None, data_seed: int = 0):
    """Images in one sub-folder per class (train/val/test sub-trees used when present)."""
    if not arg:
        raise DataError("folder dataset needs a path: --datasets folder:/path/to/images")
    root = Path(arg).expanduser()
    if not root.is_dir():
        raise DataError(f"folder dataset: {root} is not a directory")
    check_image_size(image_size, "folder dataset")
    if all((root / s).is_dir() for s in ("train", "val", "test")):
        names, files, labels = _class_files(root / "train")
        parts = [(files, labels)] + [_class_files(root / s, names)[1:] for s in ("val", "test")]
        x_all = read_images([f for fs, _ in parts for f in fs], image_size, channels)
        sizes = [len(fs) for fs, _ in parts]
        xs = torch.split(x_all, sizes)
        splits = [Split(x, torch.tensor(ls, dtype=torch.long)) for x, (_, ls) in zip(xs, parts)]
    else:
        names, files, labels = _class_files(root)
        x = read_images(files, image_size, channels)
        y = torch.tensor(labels, dtype=torch.long)
        task = "binary" if len(names) == 2 else "multiclass"
        splits = [Split(x, y).subset(i) for i in split_indices(y, task, data_seed)]
    task = "binary" if len(names) == 2 else "multiclass"
    info = DatasetInfo(name=f"folder:{root.name}", task=task, class_names=tuple(names), in_chans=splits[0].x.shape[1],
                       image_size=image_size)
    return standardise(info, *splits, options=dict(path=str(root), image_size=image_size, channels=channels,
                                                   data_seed=data_seed))
