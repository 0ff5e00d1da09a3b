"""Handling shared by every real dataset: resize, channel adaptation, splits."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import GroupShuffleSplit, train_test_split

from kdbench.data.contract import stratify_key
from kdbench.errors import ConfigError, DataError

#: Ratios of the seed-fixed split used when a dataset brings no split of its own.
SPLIT_RATIOS = (0.7, 0.1, 0.2)
#: The fewest images that split leaves every part non-empty with.
MIN_SPLIT_SIZE = 7


def to_tensor_images(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) or (N, H, W, C) -> float (N, C, H, W) in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images))
    if x.dim() == 3:
        x = x.unsqueeze(-1)
    return x.permute(0, 3, 1, 2).float().div_(255.0)


def adapt(x: torch.Tensor, image_size: int | None, channels: int | None) -> torch.Tensor:
    """Resize to ``image_size`` and convert to ``channels`` (1: luminance, 3: repeat gray)."""
    if channels not in (None, 1, 3):
        raise ConfigError(f"channels must be 1 or 3, not {channels!r}")
    if channels == 3 and x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    elif channels == 1 and x.shape[1] == 3:
        x = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
    if image_size and x.shape[-1] != image_size:
        if image_size < 8:
            raise ConfigError(f"image_size {image_size} is too small; use 8 or more")
        out = []
        for i in range(0, len(x), 2048):  # bounded memory on large sets
            out.append(F.interpolate(x[i:i + 2048], size=(image_size, image_size), mode="bilinear",
                                     align_corners=False, antialias=True))
        x = torch.cat(out)
    return x


def split_indices(y: torch.Tensor, task: str, seed: int,
                  groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A stratified 70/10/20 train/val/test split, fixed by ``seed``.

    With ``groups`` (a patient id per image) the split is by group instead: every image of
    a patient lands in one split, so no test patient was seen in training (the shares are
    then shares of patients; not stratified).
    """
    n = len(y)
    if n < MIN_SPLIT_SIZE:
        raise DataError(f"{n} images are too few for the seed-fixed 70/10/20 train/val/test split; give at least "
                        f"{MIN_SPLIT_SIZE}, or your own split (a split column, or train/val/test folders)")
    idx = np.arange(n)
    if groups is not None:
        return _group_split(idx, np.asarray(groups), seed)
    key = stratify_key(y, task)
    strat = key if np.unique(key, return_counts=True)[1].min() >= 3 else None
    train, rest = _split(idx, SPLIT_RATIOS[0], seed, strat)
    strat_rest = key[rest] if strat is not None and np.unique(key[rest], return_counts=True)[1].min() >= 2 else None
    val_share = SPLIT_RATIOS[1] / (SPLIT_RATIOS[1] + SPLIT_RATIOS[2])
    val, test = _split(rest, val_share, seed, strat_rest)
    return np.sort(train), np.sort(val), np.sort(test)


def _group_split(idx: np.ndarray, groups: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """70/10/20 of the groups (patients), each group whole in one split."""
    patients = len(np.unique(groups))
    if patients < MIN_SPLIT_SIZE:
        raise DataError(f"{patients} patients are too few for a 70/10/20 split by patient; give at "
                        f"least {MIN_SPLIT_SIZE}, or your own split (a split column)")
    n_test = max(1, round(SPLIT_RATIOS[2] * patients))  # whole patients (a float share rounds up)
    rest, test = next(GroupShuffleSplit(n_splits=1, test_size=n_test, random_state=seed).split(idx, groups=groups))
    val_share = SPLIT_RATIOS[1] / (SPLIT_RATIOS[0] + SPLIT_RATIOS[1])
    n_val = max(1, round(val_share * len(np.unique(groups[rest]))))
    train, val = next(GroupShuffleSplit(n_splits=1, test_size=n_val, random_state=seed)
                      .split(rest, groups=groups[rest]))
    return np.sort(idx[rest][train]), np.sort(idx[rest][val]), np.sort(idx[test])


def holdout_indices(y: torch.Tensor, task: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stratified train/val split of a training set that came without validation images.

    Validation takes the share the 70/10/20 split gives it of train + val (1/8), fixed by ``seed``.
    """
    if len(y) < MIN_SPLIT_SIZE:
        raise DataError(f"{len(y)} training images are too few to hold out validation images from; give at least "
                        f"{MIN_SPLIT_SIZE}, or a validation folder")
    idx = np.arange(len(y))
    key = stratify_key(y, task)
    strat = key if np.unique(key, return_counts=True)[1].min() >= 2 else None
    n_val = max(1, round(len(y) * SPLIT_RATIOS[1] / (SPLIT_RATIOS[0] + SPLIT_RATIOS[1])))
    train, val = _split(idx, len(y) - n_val, seed, strat)
    return np.sort(train), np.sort(val)


def _split(idx: np.ndarray, train_size: float | int, seed: int, strat) -> tuple[np.ndarray, np.ndarray]:
    """Stratified when the classes allow it (enough images per class in each part), else a seeded shuffle."""
    if strat is not None:
        try:
            return train_test_split(idx, train_size=train_size, random_state=seed, stratify=strat)
        except ValueError:  # fewer images in a part than classes: stratifying is impossible, not an error
            pass
    return train_test_split(idx, train_size=train_size, random_state=seed)
