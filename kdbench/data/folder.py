"""``folder:<path>``: images sorted into one sub-folder per class.

Either ``<path>`` holds the class folders, and the images are split 70/10/20, stratified
by class, with ``data_seed``; or it holds split folders, each with the same class
folders: a train and a test folder (``train``/``training``, ``test``/``testing``, any
case, as the Kaggle brain-tumour set's ``Training/`` and ``Testing/``) and optionally a
validation folder (``val``/``valid``/``validation``). Without one, validation is a
stratified eighth of the training folder (the 70/10 share), fixed by ``data_seed``; the
test folder is never re-split. Split folders beside class folders, a split folder
alone, or a class in val/test that train lacks are refused: each would make the split
itself a label, or drop images silently. The brain-tumour and eye-disease sets of the
transparency study come this way. 16-bit images are scaled by their bit depth, not
clipped (see :func:`kdbench.data.images.read_images`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from kdbench.data.common import holdout_indices, split_indices
from kdbench.data.contract import DatasetInfo, Split, standardise
from kdbench.data.images import IMAGE_SUFFIXES, check_image_size, read_images
from kdbench.errors import DataError

#: Folder names (any case) read as a split rather than a class.
SPLIT_FOLDERS = {"train": ("train", "training"), "val": ("val", "valid", "validation"), "test": ("test", "testing")}


def _subfolders(root: Path) -> list[Path]:
    return sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))


def _split_folders(root: Path) -> dict[str, Path]:
    """The split folders directly under ``root``, by split; two folders for one split are refused."""
    found: dict[str, Path] = {}
    for d in _subfolders(root):
        split = next((s for s, names in SPLIT_FOLDERS.items() if d.name.lower() in names), None)
        if split is None:
            continue
        if split in found:
            raise DataError(f"folder dataset: {root} has two {split} folders, {found[split].name} and {d.name}; "
                            f"keep one")
        found[split] = d
    return found


def _class_files(root: Path, classes: list[str] | None = None) -> tuple[list[str], list[Path], list[int]]:
    dirs = _subfolders(root)
    names = classes or [d.name for d in dirs]
    if not names:
        raise DataError(f"folder dataset: {root} has no class sub-folders; expected {root}/<class>/<image files>")
    if classes is not None:
        extra = [d.name for d in dirs if d.name not in classes]
        if extra:
            raise DataError(f"folder dataset: class folder {root / extra[0]} has no counterpart in the training "
                            f"folder (classes: {', '.join(classes)}); its images would be left out")
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
    given = _split_folders(root)
    if given:
        if "train" not in given or "test" not in given:
            have = ", ".join(d.name for d in given.values())
            raise DataError(f"folder dataset: {root} has split folder(s) {have} but not both a train and a test "
                            f"folder; give train/ and test/ (val/ optional) each holding the class folders, or "
                            f"only class folders")
        others = [d.name for d in _subfolders(root) if d not in given.values()]
        if others:
            raise DataError(f"folder dataset: {root} holds split folders ({', '.join(d.name for d in given.values())}) "
                            f"and other folders ({', '.join(others)}); put every class folder inside the split "
                            f"folders")
        names, files, labels = _class_files(given["train"])
        task = "binary" if len(names) == 2 else "multiclass"
        parts = [(files, labels)] + [_class_files(given[s], names)[1:] if s in given else None for s in ("val", "test")]
        listed = [p for p in parts if p is not None]
        x_all = read_images([f for fs, _ in listed for f in fs], image_size, channels)
        xs = iter(torch.split(x_all, [len(fs) for fs, _ in listed]))  # in the order of ``listed``
        splits = [None if p is None else Split(next(xs), torch.tensor(p[1], dtype=torch.long)) for p in parts]
        if splits[1] is None:  # no validation folder: a stratified eighth of train, never the test images
            train_idx, val_idx = holdout_indices(splits[0].y, task, data_seed)
            splits = [splits[0].subset(train_idx), splits[0].subset(val_idx), splits[2]]
    else:
        names, files, labels = _class_files(root)
        task = "binary" if len(names) == 2 else "multiclass"
        x = read_images(files, image_size, channels)
        y = torch.tensor(labels, dtype=torch.long)
        splits = [Split(x, y).subset(i) for i in split_indices(y, task, data_seed)]
    info = DatasetInfo(name=f"folder:{root.name}", task=task, class_names=tuple(names), in_chans=splits[0].x.shape[1],
                       image_size=image_size)
    return standardise(info, *splits, options=dict(path=str(root), image_size=image_size, channels=channels,
                                                   data_seed=data_seed))
