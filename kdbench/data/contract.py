"""The dataset contract: splits as tensors plus the metadata every component reads.

Images are float tensors (N, C, H, W) standardised with per-channel statistics of the
train split; labels are int64 (N,) for binary/multiclass and float (N, L) in {0,1} for
multilabel. Optional ground-truth masks on the test split unlock the localisation
metrics: (N, 1, H, W), the evidence for the image's class, or, for multilabel, (N, L, H, W),
one mask per label (:func:`explained_masks` picks the explained label's).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from sklearn.model_selection import StratifiedShuffleSplit

from kdbench.errors import ConfigError, DataError

TASKS = ("binary", "multiclass", "multilabel")


def explained_masks(masks: np.ndarray | None, targets: np.ndarray) -> np.ndarray | None:
    """The (N, 1, H, W) ground truth of the explained class: per-label masks give the target label's.

    A multilabel image usually shows several findings; a Grad-CAM of one label that lands on
    another label's lesion is no hit.
    """
    if masks is None or masks.shape[1] == 1:
        return masks
    return masks[np.arange(len(masks)), np.asarray(targets, dtype=int)][:, None]


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    task: str
    class_names: tuple[str, ...]
    in_chans: int
    image_size: int
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    has_masks: bool = False

    @property
    def num_classes(self) -> int:
        """Output units: 2 for binary (softmax over two logits), L for multilabel."""
        return len(self.class_names)


@dataclass
class Split:
    x: torch.Tensor
    y: torch.Tensor
    masks: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index) -> "Split":
        index = torch.as_tensor(index, dtype=torch.long)
        masks = self.masks[index] if self.masks is not None else None
        return Split(self.x[index], self.y[index], masks)


@dataclass
class DatasetBundle:
    info: DatasetInfo
    train: Split
    val: Split
    test: Split
    options: dict = field(default_factory=dict)
    _fingerprint: str = field(default="", repr=False, compare=False)

    @property
    def fingerprint(self) -> str:
        """A SHA-256 of the data actually loaded (every split's images, labels and masks, and the metadata).

        Teachers and jobs are keyed by it, so a cached teacher is never reused after the
        data changed under the same file name (relabelled, re-exported, another version).
        Computed once per bundle: about a second per 100 MB of images.
        """
        if not self._fingerprint:
            h = hashlib.sha256()
            info = self.info
            h.update(repr((info.name, info.task, info.class_names, info.in_chans, info.image_size,
                           info.has_masks)).encode())
            for name in ("train", "val", "test"):
                split = getattr(self, name)
                for part, tensor in (("x", split.x), ("y", split.y), ("masks", split.masks)):
                    h.update(f"{name}.{part}".encode())
                    if tensor is not None:
                        t = tensor.detach().cpu().contiguous()
                        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
                        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint


def standardise(info: DatasetInfo, train: Split, val: Split, test: Split, options=None) -> DatasetBundle:
    """Standardise every split with the train split's per-channel mean and std."""
    mean = train.x.mean(dim=(0, 2, 3))
    std = train.x.std(dim=(0, 2, 3)).clamp_min(1e-6)

    def norm(s: Split) -> Split:
        return Split(((s.x - mean[None, :, None, None]) / std[None, :, None, None]).float(), s.y, s.masks)

    info = replace(info, mean=tuple(mean.tolist()), std=tuple(std.tolist()))
    return DatasetBundle(info, norm(train), norm(val), norm(test), dict(options or {}))


def check_labels(info: DatasetInfo, split: Split, where: str) -> None:
    """Refuse datasets a classifier cannot learn from (one class, empty split)."""
    if len(split) == 0:
        raise DataError(f"dataset {info.name}: the {where} split is empty")
    if info.task != "multilabel" and len(torch.unique(split.y)) < 2:
        fix = ("add images of another class" if where == "train" else
               f"give each class more images, or a {where} folder or split column with every class")
        raise DataError(f"dataset {info.name}: the {where} split has only one class; a classifier needs two or "
                        f"more: {fix}")


def stratify_key(y: torch.Tensor, task: str) -> np.ndarray:
    """A label per sample to stratify on: the class, or the label set for multilabel."""
    if task == "multilabel":
        bits = y.long().numpy()
        return np.array(["".join(map(str, r)) for r in bits])
    return y.numpy()


def fraction_indices(y: torch.Tensor, task: str, fraction: float, seed: int) -> np.ndarray:
    """Stratified, seed-fixed subset of the train split; identical for every method.

    It depends only on the labels, the fraction and the seed, so two methods distilled
    at the same (seed, fraction) see exactly the same images.
    """
    n = len(y)
    if not 0 < fraction <= 1:
        raise ConfigError(f"fraction {fraction} is outside (0, 1]; use e.g. --fractions 0.1,0.25,1.0")
    if fraction == 1:
        return np.arange(n)
    k = int(round(n * fraction))
    key = stratify_key(y, task)
    _, counts = np.unique(key, return_counts=True)
    n_groups = len(counts)  # classes, or for multilabel the distinct label sets
    n_classes = y.shape[1] if task == "multilabel" else n_groups
    if k < n_classes:
        raise ConfigError(
            f"fraction {fraction} of {n} training images keeps {k}, fewer than the {n_classes} classes; use a larger fraction"
        )
    # rare label sets, or too few images kept (or left out) for one per class: stratifying is impossible,
    # so a seeded shuffle (still the same images for every method)
    if counts.min() < 2 or k < n_groups or n - k < n_groups:
        rng = np.random.default_rng(seed)
        return np.sort(rng.permutation(n)[:k])
    splitter = StratifiedShuffleSplit(n_splits=1, train_size=k, random_state=seed)
    idx, _ = next(splitter.split(np.zeros(n), key))
    return np.sort(idx)
