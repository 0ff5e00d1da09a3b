"""Leaderboard plots (matplotlib; each saved as PNG and SVG).

- ``tradeoff_<dataset>``: accuracy (or AUC) against FLOPs and against parameters, one
  marker per method: the size/quality trade-off the on-device papers are about;
- ``fractions_<dataset>``: a metric against the training fraction, one line per method;
- ``explanations_bars_<dataset>``: explanation metrics per model and explainer, the random
  baseline drawn as a dashed line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kdbench.report.figures import file_stem
from kdbench.report.leaderboard import Table

MARKERS = "osD^v<>ph*"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _log_axis(ax, values=None):
    """Log x axis with readable labels (1.8M, 11M) and no cluttered minor labels."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    from kdbench.report.render import human

    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    if values is not None:
        ax.set_xticks(values)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: human(v)))


def _save(fig, path: Path) -> list[Path]:
    """Save PNG and SVG byte-identically for identical tables.

    Re-running a finished benchmark redraws every plot; without a fixed SVG id salt and
    without the date stamp, the committed results would change on every re-run although
    nothing in them did.
    """
    import matplotlib

    paths = []
    for ext in ("png", "svg"):
        p = path.with_suffix(f".{ext}")
        metadata = {"Date": None} if ext == "svg" else {}
        with matplotlib.rc_context({"svg.hashsalt": "kdbench"}):
            fig.savefig(p, dpi=120, bbox_inches="tight", metadata=metadata)
        paths.append(p)
    _plt().close(fig)
    return paths


def tradeoff_plots(pred: Table, out_dir: Path, metric: str = "accuracy") -> list[Path]:
    plt = _plt()
    paths = []
    df = pred.frame[pred.frame["fraction"] == pred.frame["fraction"].max()]
    for dataset, part in df.groupby("dataset", sort=False):
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
        methods = list(dict.fromkeys(part["method"]))
        for ax, x in zip(axes, ("flops", "params")):
            for i, method in enumerate(methods):
                sub = part[part["method"] == method]
                ax.errorbar(sub[f"{x}_mean"], sub[f"{metric}_mean"], yerr=sub[f"{metric}_std"].fillna(0),
                            fmt=MARKERS[i % len(MARKERS)] if method != "teacher" else "*", ms=9 if method == "teacher"
                            else 6, capsize=2, label=method, linestyle="none")
                for _, r in sub.iterrows():
                    ax.annotate(r["student"], (r[f"{x}_mean"], r[f"{metric}_mean"]), fontsize=6,
                                xytext=(3, 3), textcoords="offset points")
            _log_axis(ax)
            ax.set_xlabel("FLOPs per image (log)" if x == "flops" else "parameters (log)")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel(f"test {metric} (mean ± std over seeds)")
        axes[1].legend(fontsize=7, loc="best")
        fig.suptitle(f"{dataset}: {metric} against size and compute")
        paths += _save(fig, out_dir / f"tradeoff_{file_stem(dataset)}")
    return paths


def fraction_plots(pred: Table, out_dir: Path, metric: str = "accuracy") -> list[Path]:
    plt = _plt()
    paths = []
    df = pred.frame[pred.frame["method"] != "teacher"]
    if df["fraction"].nunique() < 2:
        return paths
    for dataset, part in df.groupby("dataset", sort=False):
        students = list(dict.fromkeys(part["student"]))
        fig, axes = plt.subplots(1, len(students), figsize=(5 * len(students), 4), squeeze=False, sharey=True)
        for ax, student in zip(axes[0], students):
            sub = part[part["student"] == student]
            for i, (method, m) in enumerate(sub.groupby("method", sort=False)):
                m = m.sort_values("fraction")
                ax.errorbar(m["fraction"], m[f"{metric}_mean"], yerr=m[f"{metric}_std"].fillna(0),
                            marker=MARKERS[i % len(MARKERS)], capsize=2, label=method,
                            linestyle="--" if method == "scratch" else "-")
            teacher = pred.frame[(pred.frame["dataset"] == dataset) & (pred.frame["method"] == "teacher")]
            for _, t in teacher.iterrows():
                ax.axhline(t[f"{metric}_mean"], color="grey", lw=0.8, ls=":", label=f"teacher {t['student']}")
            _log_axis(ax, sorted(sub["fraction"].unique()))
            ax.set_xlabel("fraction of the training split")
            ax.set_title(student, fontsize=9)
            ax.grid(alpha=0.3)
        axes[0, 0].set_ylabel(f"test {metric}")
        axes[0, -1].legend(fontsize=7)
        fig.suptitle(f"{dataset}: {metric} with less data")
        paths += _save(fig, out_dir / f"fractions_{file_stem(dataset)}")
    return paths


def explanation_bar_plots(xai: Table, out_dir: Path, max_metrics: int = 4) -> list[Path]:
    plt = _plt()
    paths = []
    preferred = ["pointing_game", "attribution_localisation", "faithfulness_correlation", "sparseness",
                 "pixel_flipping", "complexity"]
    metrics = [m for m in preferred if m in xai.metrics][:max_metrics] or xai.metrics[:max_metrics]
    df = xai.frame[xai.frame["fraction"] == xai.frame["fraction"].max()]
    for dataset, part in df.groupby("dataset", sort=False):
        models = list(dict.fromkeys(zip(part["student"], part["method"])))
        explainers = [e for e in dict.fromkeys(part["explainer"]) if e != "random"]
        fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.8), squeeze=False)
        width = 0.8 / max(len(explainers), 1)
        x = np.arange(len(models))
        for ax, metric in zip(axes[0], metrics):
            for j, explainer in enumerate(explainers):
                vals, errs = [], []
                for student, method in models:
                    r = part[(part["student"] == student) & (part["method"] == method) & (part["explainer"] == explainer)]
                    vals.append(r[f"{metric}_mean"].iloc[0] if len(r) else np.nan)
                    errs.append(r[f"{metric}_std"].iloc[0] if len(r) and not pd.isna(r[f"{metric}_std"].iloc[0]) else 0)
                ax.bar(x + (j - (len(explainers) - 1) / 2) * width, vals, width, yerr=errs, capsize=2, label=explainer)
            rnd = part[part["explainer"] == "random"][f"{metric}_mean"]
            if rnd.notna().any():
                ax.axhline(rnd.mean(), color="black", ls="--", lw=1, label="random (chance)")
            ax.set_xticks(x, [f"{s}\n{m}" for s, m in models], fontsize=6, rotation=45, ha="right")
            ax.set_title(f"{metric} {xai.specs[metric].arrow}", fontsize=9)
            ax.grid(axis="y", alpha=0.3)
        axes[0, -1].legend(fontsize=7)
        fig.suptitle(f"{dataset}: explanation quality per model and explainer")
        paths += _save(fig, out_dir / f"explanations_bars_{file_stem(dataset)}")
    return paths


def write_plots(tables: list[Table], out_dir: Path) -> list[Path]:
    by_name = {t.name: t for t in tables}
    paths = []
    if "predictive" in by_name:
        pred = by_name["predictive"]
        metric = "accuracy" if pred.frame["accuracy_mean"].notna().any() else "auc"
        paths += tradeoff_plots(pred, out_dir, metric) + fraction_plots(pred, out_dir, metric)
    if "explanations" in by_name:
        paths += explanation_bar_plots(by_name["explanations"], out_dir)
    return paths
