"""``csv:<path>``: multi-label chest X-ray sets described by a CSV of labels.

Two layouts are understood:

- ChestX-ray14 style: one column (``label_col``, default ``Finding Labels``) with
  ``|``-separated findings; ``No Finding`` means no label is present.
- CheXpert style: one column per label holding 1 (present), 0 (absent), -1 (uncertain)
  or blank (not mentioned). Blank counts as absent. Uncertain follows ``uncertain``:
  ``zeros`` (U-Zeros, default) or ``ones`` (U-Ones), after Irvin et al. 2019.

Image paths (``image_col``, default the first of ``Image Index``, ``Path``, ``path``,
``image``) are relative to the CSV's folder unless ``image_root`` is given; each image
may be listed once (a repeated file could land in train and test). A ``split`` column
with train/val/test is used when present; otherwise a seed-fixed 70/10/20 split by patient
where the CSV says who the patient is (``group_col``, default ChestX-ray14's ``Patient ID``
column, else the ``patientNNNNN`` folder of CheXpert paths), so no test patient's other
films are in training (ChestX-ray14 has ~3.6 films per patient); by image otherwise.

Label cells must be 1, 0, -1 (also written 1.0, 0.0, -1.0) or blank; any other value
("yes", "positive", 2) is refused with its column and row rather than read as 0. Without
``labels``, the label columns are the numeric ones and the text ones holding a 1, 0 or -1.
16-bit images are scaled by their bit depth (see :func:`kdbench.data.images.read_images`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kdbench.data.common import split_indices
from kdbench.data.contract import DatasetInfo, Split, standardise
from kdbench.data.images import check_image_size, read_images
from kdbench.errors import ConfigError, DataError

PATH_COLUMNS = ("Image Index", "Path", "path", "image", "filename")
NO_FINDING = "No Finding"
LABEL_VALUES = (1.0, 0.0, -1.0)
SPLITS = ("train", "val", "test")
#: ChestX-ray14's patient column, and CheXpert's patient folder in its image paths.
PATIENT_COLUMN = "Patient ID"
PATIENT_IN_PATH = re.compile(r"(?:^|/)(patient\d+)/")


def csv_labels(arg=None, *, seed: int = 0, image_size: int = 64, channels: int | None = None, image_col: str = "",
               label_col: str = "", labels: list | None = None, uncertain: str = "zeros", image_root: str = "",
               group_col: str = "", data_seed: int = 0):
    """Multi-label images listed in a CSV (ChestX-ray14 or CheXpert style)."""
    if not arg:
        raise DataError("csv dataset needs a path: --datasets csv:/path/to/labels.csv")
    path = Path(arg).expanduser()
    if not path.is_file():
        raise DataError(f"csv dataset: {path} " + ("is a folder; give the CSV file of labels in it" if path.is_dir()
                                                   else "does not exist"))
    if uncertain not in ("zeros", "ones"):
        raise ConfigError(f"csv dataset: uncertain must be zeros or ones, not {uncertain!r}")
    if labels is not None and (not isinstance(labels, (list, tuple)) or not all(isinstance(n, str) for n in labels)):
        raise ConfigError(f"csv dataset: labels must be a list of column names, e.g. "
                          f"--dataset-opt \"csv.labels=['Edema','Atelectasis']\", not {labels!r}")
    check_image_size(image_size, "csv dataset")
    df = _read(path)
    image_col = image_col or next((c for c in PATH_COLUMNS if c in df.columns), "")
    if not image_col or image_col not in df.columns:
        raise DataError(f"csv dataset: {path} has no image path column (looked for "
                        f"{image_col or ', '.join(PATH_COLUMNS)}); set it with --dataset-opt csv.image_col=NAME")
    images = _image_names(df, image_col, path)
    if label_col or (not labels and "Finding Labels" in df.columns):
        label_col = label_col or "Finding Labels"
        if label_col not in df.columns:
            raise DataError(f"csv dataset: {path} has no column {label_col!r}")
        findings = df[label_col].fillna("").astype(str).str.split("|")
        names = sorted({f.strip() for fs in findings for f in fs if f.strip() and f.strip() != NO_FINDING})
        y = np.array([[float(n in {f.strip() for f in fs}) for n in names] for fs in findings], dtype=np.float32)
    else:
        skip = {image_col, "split", group_col or PATIENT_COLUMN}
        names = list(labels) if labels else [c for c in df.columns if c not in skip and _looks_like_labels(df[c])]
        missing = [n for n in names if n not in df.columns]
        if missing:
            raise DataError(f"csv dataset: {path} has no label column {missing[0]!r}")
        if not names:
            raise DataError(f"csv dataset: {path} has no label columns (0/1/-1 per label, or a Finding Labels column)")
        y = np.zeros((len(df), len(names)), dtype=np.float32)  # our own writable array, whatever pandas returns
        for j, name in enumerate(names):
            hint = "" if labels else (f"; if {name!r} is not a label, list the label columns, e.g. "
                                      f"--dataset-opt \"csv.labels=['Edema','Effusion']\"")
            values = _label_values(df[name], name, path, images, hint)
            values[values == -1.0] = 1.0 if uncertain == "ones" else 0.0
            y[:, j] = np.nan_to_num(values, nan=0.0)  # blank: not mentioned, counted as absent
    base = Path(image_root).expanduser() if image_root else path.parent
    files = [base / p for p in images]
    absent = next((f for f in files if not f.is_file()), None)
    if absent is not None:
        raise DataError(f"csv dataset: image {absent} listed in {path} does not exist")
    _refuse_duplicates(files, images, path)
    y = torch.from_numpy(y)
    group_by = None  # where the patients were read, when the split is made here by patient
    if "split" in df.columns:
        split = df["split"].fillna("").astype(str).str.strip().str.lower().to_numpy()
        odd = np.flatnonzero(~np.isin(split, SPLITS))
        if len(odd):
            raise DataError(f"csv dataset: the split column of {path} holds {_cell(df['split'].iloc[odd[0]])} in row "
                            f"{odd[0] + 1} ({images[odd[0]]}); every row must say train, val or test")
        parts = [np.flatnonzero(split == s) for s in SPLITS]
        if any(len(p) == 0 for p in parts):
            raise DataError(f"csv dataset: the split column of {path} must name train, val and test rows")
    else:
        group_by, groups = _patients(df, group_col, images, path)
        parts = split_indices(y, "multilabel", data_seed, groups)
    x = read_images(files, image_size, channels)  # last: every cheap check first
    whole = Split(x, y)
    info = DatasetInfo(name=f"csv:{path.stem}", task="multilabel", class_names=tuple(names), in_chans=x.shape[1],
                       image_size=image_size)
    return standardise(info, *(whole.subset(p) for p in parts),
                       options=dict(path=str(path), image_size=image_size, uncertain=uncertain, data_seed=data_seed,
                                    **({"split_by_patient": group_by} if group_by else {})))


def _patients(df: pd.DataFrame, group_col: str, images: list[str], path: Path) -> tuple[str | None, np.ndarray | None]:
    """Each image's patient and where that was read (the column's name, or ``path``); (None, None) when unknown."""
    if group_col:
        if group_col not in df.columns:
            raise DataError(f"csv dataset: {path} has no column {group_col!r} (group_col names the patient id column)")
        return group_col, df[group_col].astype(str).to_numpy()
    if PATIENT_COLUMN in df.columns:
        return PATIENT_COLUMN, df[PATIENT_COLUMN].astype(str).to_numpy()
    found = [PATIENT_IN_PATH.search(p) for p in images]
    if all(found):
        return "path", np.array([m.group(1) for m in found])
    return None, None


def _read(path: Path) -> pd.DataFrame:
    """The CSV as a frame with at least one row; an empty or unparsable file is a DataError."""
    if path.stat().st_size == 0:
        raise DataError(f"csv dataset: {path} is empty; it needs a header row and one row per image")
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"csv dataset: {path} is empty; it needs a header row and one row per image") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"csv dataset: cannot parse {path} ({type(exc).__name__})") from None
    if len(df) == 0:
        raise DataError(f"csv dataset: {path} has a header but no rows; add one row per image")
    return df


def _image_names(df: pd.DataFrame, image_col: str, path: Path) -> list[str]:
    """The image column as text; a blank cell is a DataError naming its row."""
    column = df[image_col]
    names = column.fillna("").astype(str).tolist()
    blank = next((i for i, (v, n) in enumerate(zip(column.isna(), names)) if v or not n.strip()), None)
    if blank is not None:
        raise DataError(f"csv dataset: row {blank + 1} of {path} has no image path in column {image_col!r}")
    return names


def _refuse_duplicates(files: list[Path], images: list[str], path: Path) -> None:
    """The same file in two rows could land in train and test (leakage): refuse it."""
    seen: dict[Path, int] = {}
    for i, f in enumerate(files):
        key = f.resolve()
        if key in seen:
            j = seen[key]
            same = images[i] if images[i] == images[j] else f"{images[j]} (also written {images[i]})"
            raise DataError(f"csv dataset: image {same} is listed twice in {path} (rows {j + 1} and {i + 1}); "
                            f"one image in two rows can end up in both train and test, list each image once")
        seen[key] = i


def _as_numbers(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(values as float64 with NaN for blank, mask of blank cells), for numeric or text columns."""
    if pd.api.types.is_bool_dtype(column):  # True/False are not 1/0/-1 labels
        values = np.full(len(column), np.inf)
        return values, column.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(column):
        values = np.array(column.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64, copy=True)
        return values, np.isnan(values)
    text = column.astype(object).where(column.notna(), "").astype(str).str.strip()
    blank = (text == "").to_numpy()
    numbers = pd.to_numeric(text.where(~blank, None), errors="coerce")
    values = np.array(numbers.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64, copy=True)
    values[~blank & np.isnan(values)] = np.inf  # text that is not a number
    return values, blank


def _looks_like_labels(column: pd.Series) -> bool:
    """Auto-detection: numeric columns, and text columns holding at least one 1, 0 or -1."""
    if pd.api.types.is_numeric_dtype(column):
        return True
    values, blank = _as_numbers(column)
    return bool(np.isin(values[~blank], LABEL_VALUES).any())


def _label_values(column: pd.Series, name: str, path: Path, images: list[str], hint: str) -> np.ndarray:
    """One CheXpert label column as 1/0/-1 with NaN for blank; any other value is a DataError naming it."""
    values, blank = _as_numbers(column)
    bad = np.flatnonzero(~blank & ~np.isin(values, LABEL_VALUES))
    if len(bad):
        i = bad[0]
        raise DataError(f"csv dataset: column {name!r} of {path} holds {_cell(column.iloc[i])} in row {i + 1} "
                        f"({images[i]}); label values must be 1, 0, -1 (1.0, 0.0, -1.0) or blank{hint}")
    values[blank] = np.nan
    return values


def _cell(value) -> str:
    """A cell as the message shows it: text quoted, numbers as written (2, not np.float64(2.0))."""
    value = value.item() if isinstance(value, np.generic) else value
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "a blank"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return repr(value)
