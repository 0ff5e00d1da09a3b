"""Built-in datasets."""

from __future__ import annotations

import numpy as np
import torch

from kdbench.data.contract import DatasetInfo, Split, standardise
from kdbench.data.csv_labels import csv_labels
from kdbench.data.folder import folder
from kdbench.data.medmnist import medmnist
from kdbench.data.synthetic import LESION_TYPES, render
from kdbench.errors import ConfigError
from kdbench.hookspecs import hookimpl


def synthetic(arg=None, *, seed: int = 0, image_size: int = 32, n_train: int = 2000, n_val: int = 500,
              n_test: int = 500, channels: int = 3, task: str = "multiclass", data_seed: int = 0):
    """Procedural fundus-like images with exact lesion masks (no download; the default)."""
    if arg is not None:  # "synthetic:foo" ran the same data as "synthetic" under another job identity
        raise ConfigError(f"synthetic takes nothing after the colon (got {arg!r}); set its options with "
                          f"--dataset-opt synthetic.KEY=VALUE, e.g. synthetic.n_train=500")
    if task not in ("binary", "multiclass", "multilabel"):
        raise ConfigError(f"synthetic: task must be binary, multiclass or multilabel, not {task!r}")
    if channels not in (1, 3):
        raise ConfigError(f"synthetic: channels must be 1 or 3, not {channels!r}")
    if image_size < 16:
        raise ConfigError(f"synthetic: image_size {image_size} is too small for lesions to be drawn; use 16 or more")
    if not 0 <= int(data_seed) < 2**32:
        raise ConfigError(f"synthetic: data_seed {data_seed} is outside [0, 2**32)")
    sizes = [int(n_train), int(n_val), int(n_test)]
    if min(sizes) < 4:
        raise ConfigError("synthetic: n_train, n_val and n_test must each be at least 4")
    # multilabel: one mask per label, so a localisation metric scores the explained label's lesions only
    images, masks, labels = render(sum(sizes), int(image_size), np.random.default_rng(data_seed), task,
                                   by_kind=task == "multilabel")
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    if channels == 1:
        x = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
    m = torch.from_numpy(masks).float()
    m = m if m.dim() == 4 else m.unsqueeze(1)
    y = torch.from_numpy(labels)
    a, b = sizes[0], sizes[0] + sizes[1]
    splits = [Split(x[s], y[s], m[s]) for s in (slice(0, a), slice(a, b), slice(b, None))]
    names = ("healthy", "diseased") if task == "binary" else LESION_TYPES
    info = DatasetInfo(
        name="synthetic", task=task, class_names=names, in_chans=channels,
        image_size=int(image_size), has_masks=True,
    )
    options = dict(image_size=image_size, n_train=n_train, n_val=n_val, n_test=n_test,
                   channels=channels, task=task, data_seed=data_seed)
    return standardise(info, *splits, options=options)


@hookimpl
def register_datasets(register):
    register("synthetic", synthetic)
    register("medmnist", medmnist)
    register("folder", folder)
    register("csv", csv_labels)
