"""``csv:<path>``: multi-label chest X-ray sets described by a CSV of labels.

Two layouts are understood:

- ChestX-ray14 style: one column (``label_col``, default ``Finding Labels``) with
  ``|``-separated findings; ``No Finding`` means no label is present.
- CheXpert style: one column per label holding 1 (present), 0 (absent), -1 (uncertain)
  or blank (not mentioned). Blank counts as absent. Uncertain follows ``uncertain``:
  ``zeros`` (U-Zeros, default) or ``ones`` (U-Ones), after Irvin et al. 2019.

Image paths (``image_col``, default the first of ``Image Index``, ``Path``, ``path``,
``image``) are relative to the CSV's folder unless ``image_root`` is given. A ``split``
column with train/val/test is used when present; otherwise a seed-fixed 70/10/20 split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kdbench.data.common import split_indices
from kdbench.data.contract import DatasetInfo, Split, standardise
from kdbench.data.images import read_images
from kdbench.errors import ConfigError, DataError

PATH_COLUMNS = ("Image Index", "Path", "path", "image", "filename")
NO_FINDING = "No Finding"


def csv_labels(arg=None, *, seed: int = 0, image_size: int = 64, channels: int | None = None, image_col: str = "",
               label_col: str = "", labels: list | None = None, uncertain: str = "zeros", image_root: str = "",
               data_seed: int = 0):
    """Multi-label images listed in a CSV (ChestX-ray14 or CheXpert style)."""
    if not arg:
        raise DataError("csv dataset needs a path: --datasets csv:/path/to/labels.csv")
    path = Path(arg).expanduser()
    if not path.is_file():
        raise DataError(f"csv dataset: {path} does not exist")
    if uncertain not in ("zeros", "ones"):
        raise ConfigError(f"csv dataset: uncertain must be zeros or ones, not {uncertain!r}")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"csv dataset: cannot parse {path} ({type(exc).__name__})") from None
    image_col = image_col or next((c for c in PATH_COLUMNS if c in df.columns), "")
    if not image_col or image_col not in df.columns:
        raise DataError(f"csv dataset: {path} has no image path column (looked for "
                        f"{image_col or ', '.join(PATH_COLUMNS)}); set it with --dataset-opt csv.image_col=NAME")
    if label_col or (not labels and "Finding Labels" in df.columns):
        label_col = label_col or "Finding Labels"
        if label_col not in df.columns:
            raise DataError(f"csv dataset: {path} has no column {label_col!r}")
        findings = df[label_col].fillna("").astype(str).str.split("|")
        names = sorted({f.strip() for fs in findings for f in fs if f.strip() and f.strip() != NO_FINDING})
        y = np.array([[float(n in {f.strip() for f in fs}) for n in names] for fs in findings], dtype=np.float32)
    else:
        skip = {image_col, "split"}
        names = list(labels) if labels else [c for c in df.columns if c not in skip and
                                             pd.api.types.is_numeric_dtype(df[c])]
        missing = [n for n in names if n not in df.columns]
        if missing:
            raise DataError(f"csv dataset: {path} has no label column {missing[0]!r}")
        if not names:
            raise DataError(f"csv dataset: {path} has no label columns (0/1/-1 per label, or a Finding Labels column)")
        values = df[names].apply(pd.to_numeric, errors="coerce").fillna(0.0).to_numpy(dtype=np.float32)
        values[values == -1] = 1.0 if uncertain == "ones" else 0.0
        if not np.isin(values, (0.0, 1.0)).all():
            raise DataError(f"csv dataset: {path} has label values other than 1, 0, -1 or blank")
        y = values
    base = Path(image_root).expanduser() if image_root else path.parent
    files = [base / str(p) for p in df[image_col]]
    absent = next((f for f in files if not f.is_file()), None)
    if absent is not None:
        raise DataError(f"csv dataset: image {absent} listed in {path} does not exist")
    x = read_images(files, image_size, channels)
    y = torch.from_numpy(y)
    if "split" in df.columns:
        split = df["split"].astype(str).str.lower().to_numpy()
        parts = [np.flatnonzero(split == s) for s in ("train", "val", "test")]
        if any(len(p) == 0 for p in parts):
            raise DataError(f"csv dataset: the split column of {path} must name train, val and test rows")
    else:
        parts = split_indices(y, "multilabel", data_seed)
    whole = Split(x, y)
    info = DatasetInfo(name=f"csv:{path.stem}", task="multilabel", class_names=tuple(names), in_chans=x.shape[1],
                       image_size=image_size)
    return standardise(info, *(whole.subset(p) for p in parts),
                       options=dict(path=str(path), image_size=image_size, uncertain=uncertain, data_seed=data_seed))
