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

from .results import latest_rows

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
    rows = latest_rows(rows)
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
    return _sorted(out)


def _sorted(agg: pd.DataFrame, extra: list[str] = ()) -> pd.DataFrame:
    """Teacher row first; then per student and fraction: scratch, then the methods by name."""
    order = {"teacher": 0, "scratch": 1}
    agg = agg.assign(_t=agg["method"].ne("teacher"), _o=agg["method"].map(lambda m: order.get(m, 2)))
    keys = ["dataset", "teacher", "_t", "student", "fraction", "_o", "method", *extra]
    return agg.sort_values(keys).drop(columns=["_t", "_o"])


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


XAI_GROUP = GROUP + ["explainer"]


def xai_specs() -> dict[str, MetricSpec]:
    from .xai_metrics import DEFAULT_METRICS, FULL_METRICS

    return {m.name: MetricSpec(m.higher_is_better, 3) for m in DEFAULT_METRICS + FULL_METRICS}


def summarise_xai(rows: list[dict]) -> tuple[pd.DataFrame, list[str]]:
    """mean ± std over seeds of every explanation metric, per model and explainer."""
    rows = latest_rows(rows)
    df = pd.DataFrame([r for r in rows if r.get("kind") == "explanation" and r.get("status") == "ok"])
    if df.empty:
        return df, []
    known = xai_specs()
    metrics = [m for m in known if m in df and df[m].notna().any()]
    metrics += ["explain_ms_per_image"]
    for m in metrics:
        df[m] = pd.to_numeric(df[m], errors="coerce")
    g = df.groupby(XAI_GROUP, dropna=False, sort=False)
    out = g[metrics].agg(["mean", "std"])
    out.columns = [f"{m}_{stat}" for m, stat in out.columns]
    out["n"] = g.size()
    out = out.reset_index()
    out["_r"] = out["explainer"].eq("random")
    return _sorted(out, ["_r", "explainer"]).drop(columns="_r"), metrics


def xai_table(agg: pd.DataFrame, metrics: list[str], bold=None) -> tuple[list[str], list[list[str]]]:
    specs = dict(xai_specs(), explain_ms_per_image=MetricSpec(False, 2))
    headers = ["dataset", "teacher", "student", "method", "fraction", "explainer", "n"] + \
              [f"{m} {specs[m].arrow}" for m in metrics]
    best = {}
    if bold:
        for m in metrics:
            col = agg[f"{m}_mean"]
            if col.notna().any():
                best[m] = agg.groupby("dataset")[f"{m}_mean"].max() if specs[m].higher_is_better \
                    else agg.groupby("dataset")[f"{m}_mean"].min()
    cells = []
    for _, r in agg.iterrows():
        row = [r["dataset"], r["teacher"], r["student"], r["method"], f"{r['fraction']:g}", r["explainer"],
               str(int(r["n"]))]
        for m in metrics:
            text = _fmt(r[f"{m}_mean"], r[f"{m}_std"], int(r["n"]), specs[m].digits)
            if bold and m in best and r[f"{m}_mean"] == best[m].get(r["dataset"]):
                text = bold(text)
            row.append(text)
        cells.append(row)
    return headers, cells


def xai_footnote(rows: list[dict]) -> str:
    from .xai_metrics import DEFAULT_METRICS, FULL_METRICS

    used = {k for r in rows if r.get("kind") == "explanation" for k in r}
    described = "; ".join(m.describe() for m in DEFAULT_METRICS + FULL_METRICS if m.name in used)
    first = next((r for r in rows if r.get("kind") == "explanation" and r.get("xai_samples")), {})
    return (f"Quantus metrics (↑ higher / ↓ lower is better; non-default parameters in brackets): {described}. "
            f"Mean over a fixed, class-stratified subset of {first.get('xai_samples', '?')} test images, then "
            f"mean ± std over seeds. `random` is uniform noise: the chance level of every column. "
            f"explain_ms_per_image: attribution time only.")


def to_markdown(rows: list[dict]) -> str:
    agg = summarise(rows)
    if agg.empty:
        return "No successful results yet.\n"
    headers, cells = display_table(agg, bold=lambda t: f"**{t}**")
    text = "## Predictive\n\n" + tabulate(cells, headers=headers, tablefmt="github") + "\n\n" + footnote(rows) + "\n"
    xagg, metrics = summarise_xai(rows)
    if not xagg.empty:
        headers, cells = xai_table(xagg, metrics, bold=lambda t: f"**{t}**")
        text += ("\n## Explanations\n\n" + tabulate(cells, headers=headers, tablefmt="github") + "\n\n" +
                 xai_footnote(rows) + "\n")
    return text


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
    xagg, _ = summarise_xai(rows)
    if not xagg.empty:
        csv = out_dir / "leaderboard_explanations.csv"
        xagg.to_csv(csv, index=False)
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
    xagg, metrics = summarise_xai(rows)
    short = {"faithfulness_correlation": "faith", "pixel_flipping": "pixflip", "max_sensitivity": "maxsens",
             "sparseness": "sparse", "complexity": "complex", "pointing_game": "pointing",
             "attribution_localisation": "attrloc", "topk_intersection": "topk", "relevance_rank_accuracy": "rrank",
             "explain_ms_per_image": "ms/img"}
    for (dataset, teacher), part in (xagg.groupby(["dataset", "teacher"], sort=False) if not xagg.empty else []):
        headers, cells = xai_table(part, metrics, bold=lambda t: f"[bold green]{t}[/]")
        table = Table(title=f"{dataset} · teacher {teacher} · explanations", title_justify="left")
        keep = [i for i, h in enumerate(headers) if h not in ("dataset", "teacher", "n")]
        for i in keep:
            name, _, arrow = headers[i].partition(" ")
            table.add_column(f"{short.get(name, name)} {arrow}".strip(), justify="left" if i < 6 else "right")
        for c in cells:
            table.add_row(*[c[i] for i in keep])
        tables.append(table)
    if not xagg.empty:
        tables.append(xai_footnote(rows))
    return tables
