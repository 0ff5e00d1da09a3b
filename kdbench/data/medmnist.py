"""MedMNIST v2 (Yang et al., Scientific Data 2023): the official 2D npz files.

Files are looked up as ``<flag>.npz`` (28x28) or ``<flag>_<size>.npz`` (64, 128, 224) in
``root``, else in the directory the ``medmnist`` package uses by default (``~/.medmnist``),
so users who downloaded with that package need nothing else. The medmnist package itself
is not needed. Tasks and class names follow MedMNIST's own INFO table; RetinaMNIST's
ordinal grades are treated as classes.
"""

from __future__ import annotations

import numbers
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from kdbench.data.common import adapt, to_tensor_images
from kdbench.data.contract import DatasetInfo, Split, standardise
from kdbench.data.images import check_image_size
from kdbench.errors import ConfigError, DataError

_ORGANS = ("bladder", "femur-left", "femur-right", "heart", "kidney-left", "kidney-right", "liver", "lung-left",
           "lung-right", "pancreas", "spleen")

#: flag -> (task, channels, class names)
FLAGS: dict[str, tuple[str, int, tuple[str, ...]]] = {
    "pathmnist": ("multiclass", 3, ("adipose", "background", "debris", "lymphocytes", "mucus", "smooth muscle",
                                    "normal colon mucosa", "cancer-associated stroma",
                                    "colorectal adenocarcinoma epithelium")),
    "chestmnist": ("multilabel", 1, ("atelectasis", "cardiomegaly", "effusion", "infiltration", "mass", "nodule",
                                     "pneumonia", "pneumothorax", "consolidation", "edema", "emphysema", "fibrosis",
                                     "pleural", "hernia")),
    "dermamnist": ("multiclass", 3, ("actinic keratoses and intraepithelial carcinoma", "basal cell carcinoma",
                                     "benign keratosis-like lesions", "dermatofibroma", "melanoma", "melanocytic nevi",
                                     "vascular lesions")),
    "octmnist": ("multiclass", 1, ("choroidal neovascularization", "diabetic macular edema", "drusen", "normal")),
    "pneumoniamnist": ("binary", 1, ("normal", "pneumonia")),
    "retinamnist": ("multiclass", 3, ("grade 0", "grade 1", "grade 2", "grade 3", "grade 4")),
    "breastmnist": ("binary", 1, ("malignant", "normal, benign")),
    "bloodmnist": ("multiclass", 3, ("basophil", "eosinophil", "erythroblast", "immature granulocytes", "lymphocyte",
                                     "monocyte", "neutrophil", "platelet")),
    "tissuemnist": ("multiclass", 1, ("collecting duct, connecting tubule", "distal convoluted tubule",
                                      "glomerular endothelial cells", "interstitial endothelial cells", "leukocytes",
                                      "podocytes", "proximal tubule segments", "thick ascending limb")),
    "organamnist": ("multiclass", 1, _ORGANS),
    "organcmnist": ("multiclass", 1, _ORGANS),
    "organsmnist": ("multiclass", 1, _ORGANS),
}
FILE_SIZES = (28, 64, 128, 224)
KEYS = ("train_images", "train_labels", "val_images", "val_labels", "test_images", "test_labels")


def default_root() -> Path:
    """Where the medmnist package stores its downloads."""
    return Path(os.environ.get("MEDMNIST_ROOT", Path.home() / ".medmnist"))


def npz_path(flag: str, size: int, root: str | Path | None) -> Path:
    if size not in FILE_SIZES:
        raise ConfigError(f"medmnist: size must be one of {', '.join(map(str, FILE_SIZES))}, not {size}")
    name = f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"
    folder = Path(root).expanduser() if root else default_root()
    path = folder / name
    if not path.is_file():
        raise DataError(f"medmnist: {name} not found in {folder}; download it from MedMNIST v2 "
                        f"(https://zenodo.org/records/10519652, or `pip install medmnist` and its download command) "
                        f"or point --data-root at the folder that holds it")
    return path


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The six arrays of an official file, loaded without pickle; malformed files named."""
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in KEYS if k not in f.files]
            if missing:
                raise DataError(f"medmnist: {path} is not a MedMNIST file: it lacks {', '.join(missing)}")
            arrays = {k: f[k] for k in KEYS}
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"medmnist: cannot read {path} ({type(exc).__name__}: {exc}); "
                        f"the file is damaged or not an npz, download it again") from None
    check_arrays(path, arrays)
    return arrays


def check_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Refuse arrays that are not images (N, H, W) / (N, H, W, 1 or 3) of uint8 and labels (N,) / (N, L)."""
    for part in ("train", "val", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
            raise DataError(f"medmnist: {part}_images in {path} has shape {images.shape}; expected (N, H, W) "
                            f"or (N, H, W, C) with C 1 or 3, as in the official 2D files")
        if images.dtype != np.uint8:
            raise DataError(f"medmnist: {part}_images in {path} has dtype {images.dtype}; expected uint8 "
                            f"(0..255), as in the official files")
        if labels.ndim not in (1, 2) or not (np.issubdtype(labels.dtype, np.integer) or
                                             np.issubdtype(labels.dtype, np.floating)):
            raise DataError(f"medmnist: {part}_labels in {path} has shape {labels.shape} and dtype {labels.dtype}; "
                            f"expected numbers of shape (N,), (N, 1) or (N, L)")


def medmnist(arg=None, *, seed: int = 0, root: str | None = None, size: int = 28, image_size: int | None = None,
             channels: int | None = None):
    """MedMNIST v2 2D datasets, e.g. ``medmnist:pneumoniamnist`` (official npz files)."""
    flag = (arg or "").lower()
    if flag not in FLAGS:
        from kdbench.registry import unknown_message

        raise ConfigError(unknown_message("medmnist flag", flag, sorted(FLAGS)) + "; write e.g. medmnist:bloodmnist")
    task, _, names = FLAGS[flag]
    if isinstance(size, bool) or not isinstance(size, numbers.Integral):
        raise ConfigError(f"medmnist: size must be one of {', '.join(map(str, FILE_SIZES))}, not {size!r}")
    if image_size is not None:
        check_image_size(image_size, "medmnist")
    path = npz_path(flag, int(size), root)
    arrays = read_npz(path)
    splits = []
    for part in ("train", "val", "test"):
        x = adapt(to_tensor_images(arrays[f"{part}_images"]), image_size, channels)
        labels = arrays[f"{part}_labels"]
        if task == "multilabel":
            y = torch.from_numpy(labels.astype(np.float32))
            if y.dim() != 2 or y.shape[1] != len(names):
                raise DataError(f"medmnist: {part}_labels in {path} has shape {tuple(labels.shape)}, "
                                f"expected (N, {len(names)})")
        else:
            if labels.ndim == 2 and labels.shape[1] != 1:
                raise DataError(f"medmnist: {part}_labels in {path} has shape {labels.shape}, expected (N,) or (N, 1)")
            y = torch.from_numpy(labels.reshape(-1).astype(np.int64))
            if len(y) and (y.min() < 0 or y.max() >= len(names)):
                raise DataError(f"medmnist: {path} has labels outside 0..{len(names) - 1}")
        if len(x) != len(y):
            raise DataError(f"medmnist: {path} has {len(x)} {part} images but {len(y)} labels")
        splits.append(Split(x, y))
    x0 = splits[0].x
    info = DatasetInfo(name=f"medmnist:{flag}", task=task, class_names=names, in_chans=x0.shape[1],
                       image_size=x0.shape[-1])
    return standardise(info, *splits, options=dict(root=str(path.parent), size=size, image_size=image_size,
                                                   channels=channels))
