"""runs.jsonl: the one store of results, appended by one writer.

Each line is one flat JSON row (schema in docs/results-schema.md). Rows are flushed and
fsynced as they are written, so a crash loses at most the job in progress; a
half-written last line is ignored when reading and reported.
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

#: Columns every predictive row has, in display order.
ID_COLUMNS = ["dataset", "teacher", "student", "method", "seed", "fraction"]
PREDICTIVE_COLUMNS = ["accuracy", "auc", "f1", "params", "flops", "latency_ms", "train_seconds"]


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


def read_rows(path: str | Path) -> tuple[list[dict], list[str]]:
    """All complete rows, and a warning per unreadable line (e.g. cut by a crash)."""
    path = Path(path)
    rows, warnings = [], []
    if not path.exists():
        return rows, warnings
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            warnings.append(f"{path}:{i}: ignoring an incomplete row (interrupted write)")
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
