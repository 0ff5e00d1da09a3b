"""Leaderboards: one pandas frame of rows -> mean ± std over seeds -> tables.

One row per dataset/teacher/student/method/fraction; the teacher itself is a reference
row; each KD method also gets its gain over ``scratch`` (same student, fraction and
seed, then averaged). Every table states each metric's direction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

GROUP = ["dataset", "teacher", "student", "method", "fraction"]


@dataclass(frozen=True)
class MetricSpec:
    higher_is_better: bool
    digits: int = 3
    label: str = ""

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"


PREDICTIVE = {
    "accuracy": MetricSpec(True, 3),
    "auc": MetricSpec(True, 3),
    "f1": MetricSpec(True, 3),
    "params": MetricSpec(False, 0),
    "flops": MetricSpec(False, 0),
    "latency_ms": MetricSpec(False, 2),
    "train_seconds": MetricSpec(False, 1),
}
GAIN_METRICS = ("accuracy", "auc", "f1")


def predictive_frame(rows: list[dict]) -> pd.DataFrame:
    """Successful predictive rows as a frame (teacher rows included)."""
    df = pd.DataFrame([r for r in rows if r.get("status") == "ok" and r.get("kind", "predictive") == "predictive"])
    if df.empty:
        return df
    for m in PREDICTIVE:
        if m not in df:
            df[m] = np.nan
        df[m] = pd.to_numeric(df[m], errors="coerce")
    return df


def add_gains(df: pd.DataFrame) -> pd.DataFrame:
    """Per-seed gain of each method over ``scratch`` with the same student, fraction and seed."""
    keys = ["dataset", "teacher", "student", "fraction", "seed"]
    base = df[df["method"] == "scratch"][keys + list(GAIN_METRICS)]
    merged = df.merge(base, on=keys, how="left", suffixes=("", "_scratch"))
    for m in GAIN_METRICS:
        merged[f"gain_{m}"] = np.where(merged["method"].isin(["scratch", "teacher"]), np.nan,
                                       merged[m] - merged[f"{m}_scratch"])
    return merged.drop(columns=[f"{m}_scratch" for m in GAIN_METRICS])


def aggregate(df: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """mean, std and n over seeds for each group; sorted teacher, scratch, then methods."""
    g = df.groupby(GROUP, dropna=False, sort=False)
    out = g[metrics].agg(["mean", "std"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    out["n"] = g.size()
    out = out.reset_index()
    order = {"teacher": 0, "scratch": 1}
    out["_order"] = out["method"].map(lambda m: order.get(m, 2))
    return out.sort_values(["dataset", "teacher", "_order", "student", "fraction", "method"]).drop(columns="_order")


def summarise(rows: list[dict]) -> pd.DataFrame:
    df = predictive_frame(rows)
    if df.empty:
        return df
    df = add_gains(df)
    return aggregate(df, list(PREDICTIVE) + [f"gain_{m}" for m in GAIN_METRICS])


def human(value: float) -> str:
    """1234567 -> 1.23M: sizes and FLOPs read at a glance."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.0f}"


def _fmt(mean: float, std: float, n: int, digits: int) -> str:
    if pd.isna(mean):
        return "–"
    if digits == 0:
        return human(mean)
    text = f"{mean:.{digits}f}"
    if n > 1 and not pd.isna(std):
        text += f" ± {std:.{digits}f}"
    return text


def display_table(agg: pd.DataFrame, metrics: list[str] | None = None, bold=None) -> tuple[list[str], list[list[str]]]:
    """Header and string cells; ``bold(text)`` marks the best value of each metric per dataset."""
    metrics = metrics or ["accuracy", "auc", "f1", "gain_accuracy", "params", "flops", "latency_ms"]
    headers = ["dataset", "teacher", "student", "method", "fraction", "n"]
    for m in metrics:
        spec = PREDICTIVE.get(m) or MetricSpec(True, 3)
        headers.append(f"{m} {spec.arrow}")
    best = {}
    if bold:
        students = agg[agg["method"] != "teacher"]
        for m in metrics:
            spec = PREDICTIVE.get(m) or MetricSpec(True, 3)
            col = f"{m}_mean"
            if col in students and students[col].notna().any():
                best[m] = students.groupby("dataset")[col].max() if spec.higher_is_better \
                    else students.groupby("dataset")[col].min()
    rows = []
    for _, r in agg.iterrows():
        cells = [r["dataset"], r["teacher"], r["student"], r["method"], f"{r['fraction']:g}", str(int(r["n"]))]
        for m in metrics:
            spec = PREDICTIVE.get(m) or MetricSpec(True, 3)
            text = _fmt(r.get(f"{m}_mean"), r.get(f"{m}_std"), int(r["n"]), spec.digits)
            if m.startswith("gain_") and text != "–" and not text.startswith("-"):
                text = "+" + text
            if bold and m in best and r["method"] != "teacher" and r.get(f"{m}_mean") == best[m].get(r["dataset"]):
                text = bold(text)
            cells.append(text)
        rows.append(cells)
    return headers, rows


def footnote(rows: list[dict]) -> str:
    first = next((r for r in rows if r.get("status") == "ok"), {})
    directions = ", ".join(f"{m} {s.arrow}" for m, s in PREDICTIVE.items())
    return (f"Mean ± std over seeds (n seeds per row). ↑ higher is better, ↓ lower is better: {directions}. "
            f"gain_accuracy: accuracy minus that of `scratch` (same student, fraction, seed). "
            f"flops per image (2 per multiply-add); latency: batch-1 CPU median. "
            f"kdbench {first.get('kdbench_version', '?')}, torch {first.get('torch_version', '?')}, "
            f"timm {first.get('timm_version', '?')}, quantus {first.get('quantus_version', '?')}, "
            f"device {first.get('device', '?')}, {str(first.get('timestamp', ''))[:10]}.")


def to_markdown(rows: list[dict]) -> str:
    agg = summarise(rows)
    if agg.empty:
        return "No successful results yet.\n"
    headers, cells = display_table(agg, bold=lambda t: f"**{t}**")
    return tabulate(cells, headers=headers, tablefmt="github") + "\n\n" + footnote(rows) + "\n"


def write_leaderboard(rows: list[dict], out_dir: str | Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "leaderboard.md"
    md.write_text(to_markdown(rows), encoding="utf-8")
    written = [md]
    agg = summarise(rows)
    if not agg.empty:
        csv = out_dir / "leaderboard.csv"
        agg.to_csv(csv, index=False)
        written.append(csv)
    return written


def rich_tables(rows: list[dict]) -> list:
    """One rich table per (dataset, teacher), so the terminal keeps every column readable."""
    from rich.table import Table

    agg = summarise(rows)
    if agg.empty:
        return ["no successful results yet"]
    tables = []
    for (dataset, teacher), part in agg.groupby(["dataset", "teacher"], sort=False):
        headers, cells = display_table(part, bold=lambda t: f"[bold green]{t}[/]")
        table = Table(title=f"{dataset} · teacher {teacher}", title_justify="left")
        keep = [i for i, h in enumerate(headers) if h not in ("dataset", "teacher")]
        short = {"accuracy": "acc", "gain_accuracy": "Δacc", "latency_ms": "ms", "fraction": "frac"}
        for i in keep:
            name, _, arrow = headers[i].partition(" ")
            table.add_column(f"{short.get(name, name)} {arrow}".strip(), justify="left" if i < 5 else "right")
        for c in cells:
            table.add_row(*[c[i] for i in keep])
        tables.append(table)
    tables.append(footnote(rows))
    return tables
