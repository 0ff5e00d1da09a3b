"""runs.jsonl: the one store of results, appended by one writer.

Each line is one flat JSON row (schema in docs/results-schema.md). Rows are flushed and
fsynced as they are written, so a crash loses at most the job in progress; a
half-written last line, or any line that is not a result row, is ignored when reading
and reported.
"""

from __future__ import annotations

import json
import math
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import torch

from kdbench import __version__
from kdbench.errors import ConfigError

#: Columns every predictive row has, in display order.
ID_COLUMNS = ["dataset", "teacher", "student", "method", "seed", "fraction"]
PREDICTIVE_COLUMNS = ["accuracy", "auc", "f1", "params", "flops", "latency_ms", "latency_iqr_ms", "train_seconds",
                      "balanced_accuracy", "teacher_agreement", "explanation_agreement", "ece"]


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"kdbench_version": __version__, "torch_version": torch.__version__,
           "python_version": platform.python_version()}
    for dist in ("timm", "quantus", "captum"):
        try:
            out[f"{dist}_version"] = md.version(dist)
        except md.PackageNotFoundError:
            out[f"{dist}_version"] = ""
    return out


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def clean(value):
    """JSON has no NaN: store missing numbers as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RunsWriter:
    """Append-only writer of runs.jsonl; the single writer of a run's results."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def append(self, row: dict) -> None:
        self.append_many([row])

    def append_many(self, rows: list[dict]) -> None:
        """Write a job's rows with one write call and one fsync: they land together or not at all.

        A job counts as done once its predictive row exists, so its explanation rows must
        never be left behind by a crash between two appends (slow reporter plugins widened
        that window when rows were written one at a time).
        """
        if not rows:
            return
        text = "".join(json.dumps({k: clean(v) for k, v in row.items()}, default=str) + "\n" for row in rows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as f:
            f.seek(0, os.SEEK_END)
            if f.tell():  # a crash may have left a torn last line: never glue a row onto it
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())


#: Types of the columns a row may carry; a row with another type there is not kdbench's.
_TEXT, _NUMBER = (str,), (int, float)
COLUMN_TYPES = {
    "status": _TEXT, "config_hash": _TEXT, "kind": _TEXT, "dataset": _TEXT, "teacher": _TEXT, "student": _TEXT,
    "method": _TEXT, "seed": (int,), "fraction": _NUMBER, "explainer": _TEXT + (type(None),),
    "error": _TEXT + (type(None),), "method_options": (dict,), "dataset_options": (dict,),
    "epochs": (int, type(None)),
    **{c: _NUMBER + (type(None),) for c in PREDICTIVE_COLUMNS + ["best_epoch", "train_images"]},
}
#: Columns without which a row cannot be matched to its job.
REQUIRED_COLUMNS = ("status", "config_hash")


def row_problem(row) -> str:
    """Why ``row`` is not a result row kdbench wrote ('' when it is one)."""
    if not isinstance(row, dict):
        return f"a JSON {_json_type(row)}, not an object"
    missing = [c for c in REQUIRED_COLUMNS if c not in row]
    if missing:
        return f"a JSON object without {' and '.join(missing)}"
    for column, types in COLUMN_TYPES.items():
        value = row.get(column)
        if column in row and (not isinstance(value, types) or (isinstance(value, bool) and bool not in types)):
            expected = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            return f"{column} is a JSON {_json_type(value)}, not {expected}"  # never the value: it may be anything
    return ""


def _json_type(value) -> str:
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object",
            type(None): "null"}.get(type(value), type(value).__name__)


def read_rows(path: str | Path) -> tuple[list[dict], list[str]]:
    """All result rows, and a warning per line that is not one (e.g. cut by a crash, or garbage).

    Lines end at a newline byte only, as :class:`RunsWriter` writes them. A line that is not
    UTF-8, not JSON, not a JSON object, or an object that lacks ``status``/``config_hash``
    or holds a known column of the wrong type is skipped with a warning; it stays in the
    file (runs.jsonl is never rewritten), so nothing is lost.
    """
    path = Path(path)
    rows, warnings = [], []
    if not path.exists():
        return rows, warnings
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError as exc:  # a folder, or no read permission: say so, never a traceback
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}; make it a readable file "
                          f"(chmod u+r) or use another --out") from None
    last = max((i for i, line in enumerate(lines, 1) if line.strip()), default=0)
    for i, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            warnings.append(f"{path}:{i}: ignoring a line that is not UTF-8 text")
            continue
        except (ValueError, RecursionError):  # JSONDecodeError is a ValueError; RecursionError: [[[[...
            warnings.append(f"{path}:{i}: ignoring an incomplete row (interrupted write)" if i == last else
                            f"{path}:{i}: ignoring a line that is not JSON")
            continue
        problem = row_problem(row)
        if problem:
            warnings.append(f"{path}:{i}: ignoring a line that is not a result row ({problem})")
            continue
        rows.append(row)
    return rows, warnings


def finished_hashes(rows: list[dict], include_failed: bool = True) -> set[str]:
    """Config hashes of jobs a re-run skips: finished ones, and failed ones unless retried."""
    statuses = ("ok", "failed") if include_failed else ("ok",)
    latest = {r.get("config_hash"): r.get("status") for r in rows if r.get("kind", "predictive") == "predictive"}
    return {h for h, status in latest.items() if status in statuses}


class TrainingLog:
    """One JSON line per epoch of one training (``<out>/logs/<config_hash>.jsonl``)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")  # a (re)started training starts a fresh log

    def write(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({k: clean(v) for k, v in record.items()}) + "\n")


def latest_rows(rows: list[dict]) -> list[dict]:
    """The last row of each (job, kind, explainer): a ``--force`` re-run supersedes, never doubles."""
    latest: dict[tuple, dict] = {}
    for r in rows:
        latest[(r.get("config_hash"), r.get("kind", "predictive"), r.get("explainer"))] = r
    return list(latest.values())
