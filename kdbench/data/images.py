"""Reading image files: common formats, grayscale and RGB mixed, any size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from kdbench.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"}


def read_images(paths: list[Path], image_size: int, channels: int | None) -> torch.Tensor:
    """Load, convert and resize every file: float (N, C, S, S) in [0, 1].

    ``channels=None`` picks 3 if any image has colour, else 1.
    """
    if channels is None:
        channels = 3 if any(_is_colour(p) for p in paths) else 1
    mode = "RGB" if channels == 3 else "L"
    out = np.empty((len(paths), image_size, image_size, channels), dtype=np.uint8)
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as img:
                img = img.convert(mode).resize((image_size, image_size), Image.BILINEAR)
                arr = np.asarray(img)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise DataError(f"cannot read image {path} ({type(exc).__name__}); remove or replace the file") from None
        out[i] = arr.reshape(image_size, image_size, channels)
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)


def _is_colour(path: Path) -> bool:
    try:
        with Image.open(path) as img:
            return img.mode not in ("L", "LA", "I", "I;16", "1", "F")
    except (UnidentifiedImageError, OSError):
        return False  # reported with its name when the file is read
