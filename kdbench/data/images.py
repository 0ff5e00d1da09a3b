"""Reading image files: common formats, grayscale and RGB mixed, any size, 8 or 16 bits."""

from __future__ import annotations

import numbers
import struct
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from kdbench.errors import ConfigError, DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"}

#: The smallest side an image is resized to (the same floor as MedMNIST resizing).
MIN_IMAGE_SIZE = 8

#: Modes read through floats (scaled by bit depth) instead of Pillow's 8-bit ``convert``.
HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")

#: What a damaged or unusual file can raise inside Pillow while it is decoded or converted.
_READ_ERRORS = (UnidentifiedImageError, OSError, ValueError, TypeError, KeyError, IndexError, SyntaxError, EOFError,
                struct.error, ZeroDivisionError, NotImplementedError)


def check_image_size(image_size, where: str) -> None:
    """Refuse an ``image_size`` that is not a whole number of at least :data:`MIN_IMAGE_SIZE`."""
    if isinstance(image_size, bool) or not isinstance(image_size, numbers.Integral):
        raise ConfigError(f"{where}: image_size must be a whole number such as 64, not {image_size!r}")
    if image_size < MIN_IMAGE_SIZE:
        raise ConfigError(f"{where}: image_size {image_size} is too small; use {MIN_IMAGE_SIZE} or more, e.g. 64")


def read_images(paths: list[Path], image_size: int, channels: int | None) -> torch.Tensor:
    """Load, convert and resize every file: float (N, C, S, S) in [0, 1].

    ``channels=None`` picks 3 if any image has colour, else 1.

    8-bit images (modes L, RGB, P, ...) go through Pillow's ``convert`` and an 8-bit
    bilinear resize, then are divided by 255. Images of higher bit depth are scaled to
    [0, 1] by their depth before anything else, then converted and resized in floats
    (Pillow mode ``F``), so no precision is lost and nothing is clipped:

    - ``I;16``, ``I;16B``, ``I;16L``, ``I;16N`` (16-bit PNG/TIFF): divided by 65535.
    - ``I`` (32-bit integers): if no value exceeds 255 it is 8-bit data and is read as
      mode L (exactly as before); if none exceeds 65535 it is divided by 65535;
      otherwise by its own maximum.
    - ``F`` (32-bit floats): taken as [0, 1] when no value exceeds 1, otherwise divided
      by its own maximum.

    Negative values become 0 and non-finite ones 0. Grayscale is repeated for
    ``channels=3``. A file Pillow cannot decode or convert, or one larger than Pillow's
    decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``), is a :class:`DataError`
    naming it.
    """
    if channels not in (None, 1, 3):
        raise ConfigError(f"channels must be 1 or 3, not {channels!r}")
    check_image_size(image_size, "images")
    image_size = int(image_size)
    if channels is None:
        channels = 3 if any(_is_colour(p) for p in paths) else 1
    # 0..255 floats: 8-bit images are stored exactly and divided by 255 once at the end
    out = np.empty((len(paths), image_size, image_size, channels), dtype=np.float32)
    for i, path in enumerate(paths):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as img:
                    out[i] = _pixels(img, image_size, channels)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise DataError(f"cannot read image {path}: {str(exc).rstrip('.')} (Pillow's decompression-bomb guard); "
                            f"downscale the file or remove it") from None
        except _READ_ERRORS as exc:
            raise DataError(f"cannot read image {path} ({type(exc).__name__}); remove or replace the file") from None
    return torch.from_numpy(out).permute(0, 3, 1, 2).div_(255.0)


def _pixels(img: Image.Image, image_size: int, channels: int) -> np.ndarray:
    """One image as (S, S, C) floats in 0..255."""
    size = (image_size, image_size)
    if img.mode in HIGH_DEPTH_MODES:
        unit = _unit_range(img)
        if unit is not None:
            arr = np.asarray(unit.resize(size, Image.BILINEAR), dtype=np.float32) * np.float32(255.0)
            arr = np.clip(arr, 0.0, 255.0)[:, :, None]
            return np.repeat(arr, channels, axis=2) if channels == 3 else arr
        img = img.convert("L")  # mode I holding 8-bit values: the 8-bit path below
    img = img.convert("RGB" if channels == 3 else "L").resize(size, Image.BILINEAR)
    return np.asarray(img).reshape(image_size, image_size, channels)


def _unit_range(img: Image.Image) -> Image.Image | None:
    """A high-depth image as a mode ``F`` image in [0, 1]; None for mode I with 8-bit values.

    16-bit files (PNG since Pillow 10.3, the floor in pyproject.toml; TIFF, JPEG 2000) open as
    ``I;16*`` and are scaled by their bit depth. Mode ``I`` (32-bit integer files) and ``F``
    carry no bit depth, so their scale is read from the image's own values: such files are
    only consistent across a dataset when every image spans the same range.
    """
    arr = np.asarray(img)
    values = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(values.max()) if values.size else 0.0
    if img.mode.startswith("I;16"):
        scale = 65535.0
    elif img.mode == "I":
        if top <= 255:
            return None
        scale = 65535.0 if top <= 65535 else top
    else:  # F
        scale = 1.0 if top <= 1 else top
    unit = np.clip(values / scale, 0.0, 1.0).astype(np.float32)
    return Image.fromarray(unit)  # a float32 array is mode F


def _is_colour(path: Path) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return img.mode not in ("L", "LA", "La", "1") + HIGH_DEPTH_MODES
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) + _READ_ERRORS:
        return False  # reported with its name when the file is read
