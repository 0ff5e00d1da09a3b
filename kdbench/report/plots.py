"""Leaderboard plots (matplotlib; each saved as PNG and SVG).

- ``tradeoff_<dataset>``: accuracy (or AUC) against FLOPs and against parameters, one
  marker per method: the size/quality trade-off the on-device papers are about;
- ``fractions_<dataset>``: a metric against the training fraction, one line per method;
- ``explanations_bars_<dataset>``: explanation metrics per model and explainer, the random
  baseline drawn as a dashed line.

Every method has one colour and marker in every figure of every run
(:func:`kdbench.report.figures.method_style`), every explainer one colour; legends sit
outside the data area, and no figure labels its points with text that could overlap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kdbench.report.figures import (
    explainer_order,
    explainer_style,
    file_stem,
    method_order,
    method_style,
)
from kdbench.report.leaderboard import Table

#: Students told apart by the fill of their method's marker (full, hollow, half...).
FILLS = ("full", "none", "left", "bottom", "right", "top")
#: Methods at the same point are spread sideways by this many decades on the log axes.
DODGE_DECADES = 0.012


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


def _legend_outside(fig, handles, labels, title=None, anchor_y=0.5, loc="center left"):
    """A figure legend right of the axes (``bbox_inches='tight'`` keeps it in the file)."""
    return fig.legend(handles, labels, title=title, loc=loc, bbox_to_anchor=(1.0, anchor_y), fontsize=8,
                      title_fontsize=8, frameon=False, borderaxespad=0.0)


def tradeoff_plots(pred: Table, out_dir: Path, metric: str = "accuracy") -> list[Path]:
    """Quality against FLOPs and parameters: colour and marker = method, marker fill = student.

    The points are not labelled (labels of near points overlapped): the legends right of
    the plot name the methods and the students. Methods of one student share its FLOPs and
    parameters, so their points are spread sideways by a few hundredths of a decade
    (``DODGE_DECADES``) to keep equal results visible.
    """
    from matplotlib.lines import Line2D

    plt = _plt()
    paths = []
    df = pred.frame[pred.frame["fraction"] == pred.frame["fraction"].max()]
    for dataset, part in df.groupby("dataset", sort=False):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=True)
        methods = method_order(part["method"])
        students = list(dict.fromkeys(part.loc[part["method"] != "teacher", "student"]))
        fill = {s: FILLS[i % len(FILLS)] for i, s in enumerate(students)}
        for ax, x in zip(axes, ("flops", "params")):
            for student, sub in part.groupby("student", sort=False):
                present = [m for m in methods if m in set(sub["method"])]
                for _, r in sub.iterrows():
                    style = method_style(r["method"])
                    shift = (present.index(r["method"]) - (len(present) - 1) / 2) * DODGE_DECADES
                    teacher = r["method"] == "teacher"
                    ax.errorbar([r[f"{x}_mean"] * 10 ** shift], [r[f"{metric}_mean"]],
                                yerr=[0 if pd.isna(r[f"{metric}_std"]) else r[f"{metric}_std"]],
                                color=style["color"], marker=style["marker"], ms=11 if teacher else 7,
                                fillstyle="full" if teacher else fill[student], markeredgewidth=1.2,
                                capsize=2, elinewidth=0.8, linestyle="none")
            _log_axis(ax)
            ax.set_xlabel("FLOPs per image (log)" if x == "flops" else "parameters (log)")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel(f"test {metric} (mean ± std over seeds)")
        method_handles = [Line2D([], [], color=method_style(m)["color"], marker=method_style(m)["marker"],
                                 linestyle="none", ms=8 if m == "teacher" else 6) for m in methods]
        legend = _legend_outside(fig, method_handles, methods, title="method", anchor_y=0.98, loc="upper left")
        if students:
            fig.add_artist(legend)
            student_handles = [Line2D([], [], color="#444444", marker="o", fillstyle=fill[s], linestyle="none", ms=6)
                               for s in students]
            _legend_outside(fig, student_handles, students, title="student", anchor_y=0.02, loc="lower left")
        fig.suptitle(f"{dataset}: {metric} against size and compute")
        fig.tight_layout()
        paths += _save(fig, out_dir / f"tradeoff_{file_stem(dataset)}")
    return paths


def fraction_plots(pred: Table, out_dir: Path, metric: str = "accuracy") -> list[Path]:
    from matplotlib.lines import Line2D

    plt = _plt()
    paths = []
    df = pred.frame[pred.frame["method"] != "teacher"]
    if df["fraction"].nunique() < 2:
        return paths
    for dataset, part in df.groupby("dataset", sort=False):
        students = list(dict.fromkeys(part["student"]))
        fig, axes = plt.subplots(1, len(students), figsize=(4.2 * len(students), 3.6), squeeze=False, sharey=True)
        drawn = {}
        for ax, student in zip(axes[0], students):
            sub = part[part["student"] == student]
            for method in method_order(sub["method"]):
                m = sub[sub["method"] == method].sort_values("fraction")
                style = method_style(method)
                ax.errorbar(m["fraction"], m[f"{metric}_mean"], yerr=m[f"{metric}_std"].fillna(0), capsize=2,
                            ms=5, **style)
                drawn[method] = Line2D([], [], ms=5, **style)
            teacher = pred.frame[(pred.frame["dataset"] == dataset) & (pred.frame["method"] == "teacher")]
            for _, t in teacher.iterrows():
                ax.axhline(t[f"{metric}_mean"], color=method_style("teacher")["color"], lw=0.8, ls=":")
                drawn[f"teacher {t['student']}"] = Line2D([], [], color=method_style("teacher")["color"], lw=0.8,
                                                          ls=":")
            _log_axis(ax, sorted(sub["fraction"].unique()))
            ax.set_xlabel("fraction of the training split")
            ax.set_title(student, fontsize=9)
            ax.grid(alpha=0.3)
        axes[0, 0].set_ylabel(f"test {metric}")
        _legend_outside(fig, list(drawn.values()), list(drawn), title="method")
        fig.suptitle(f"{dataset}: {metric} with less data")
        fig.tight_layout()
        paths += _save(fig, out_dir / f"fractions_{file_stem(dataset)}")
    return paths


def explanation_bar_plots(xai: Table, out_dir: Path, max_metrics: int = 4) -> list[Path]:
    """One panel per metric (stacked), one group of bars per model, one colour per explainer.

    Models are grouped by student (named above the groups); the x labels are the methods.
    """
    from matplotlib.transforms import blended_transform_factory

    plt = _plt()
    paths = []
    preferred = ["pointing_game", "attribution_localisation", "faithfulness_correlation", "sparseness",
                 "pixel_flipping", "complexity"]
    metrics = [m for m in preferred if m in xai.metrics][:max_metrics] or xai.metrics[:max_metrics]
    df = xai.frame[xai.frame["fraction"] == xai.frame["fraction"].max()]
    for dataset, part in df.groupby("dataset", sort=False):
        models = list(dict.fromkeys(zip(part["student"], part["method"])))
        explainers = [e for e in explainer_order(part["explainer"]) if e != "random"]
        fig, axes = plt.subplots(len(metrics), 1, figsize=(max(6.0, 0.5 * len(models) + 1.5), 1.9 * len(metrics) + 0.9),
                                 squeeze=False, sharex=True)
        width = 0.8 / max(len(explainers), 1)
        x = np.arange(len(models))
        groups = [(s, [i for i, (st, _) in enumerate(models) if st == s]) for s in dict.fromkeys(s for s, _ in models)]
        handles = {}
        for ax, metric in zip(axes[:, 0], metrics):
            for j, explainer in enumerate(explainers):
                vals, errs = [], []
                for student, method in models:
                    r = part[(part["student"] == student) & (part["method"] == method) & (part["explainer"] == explainer)]
                    vals.append(r[f"{metric}_mean"].iloc[0] if len(r) else np.nan)
                    errs.append(r[f"{metric}_std"].iloc[0] if len(r) and not pd.isna(r[f"{metric}_std"].iloc[0]) else 0)
                handles[explainer] = ax.bar(x + (j - (len(explainers) - 1) / 2) * width, vals, width, yerr=errs,
                                            capsize=1.5, error_kw={"elinewidth": 0.6},
                                            color=explainer_style(explainer)["color"])
            rnd = part[part["explainer"] == "random"][f"{metric}_mean"]
            if rnd.notna().any():
                handles["random (chance)"] = ax.axhline(rnd.mean(), color="black", ls="--", lw=1)
            for _, idx in groups[1:]:
                ax.axvline(idx[0] - 0.5, color="#999999", lw=0.6)
            ax.set_ylabel(f"{metric.replace('_', ' ')} {xai.specs[metric].arrow}", fontsize=8)
            ax.tick_params(axis="y", labelsize=7)
            ax.grid(axis="y", alpha=0.3)
        top = axes[0, 0]
        trans = blended_transform_factory(top.transData, top.transAxes)
        for student, idx in groups:
            top.text((idx[0] + idx[-1]) / 2, 1.03, student, transform=trans, ha="center", va="bottom", fontsize=7)
        axes[-1, 0].set_xticks(x, [m for _, m in models], fontsize=7, rotation=45, ha="right")
        axes[-1, 0].set_xlim(-0.6, len(models) - 0.4)
        _legend_outside(fig, list(handles.values()), list(handles), title="explainer")
        fig.suptitle(f"{dataset}: explanation quality per model and explainer", fontsize=10)
        fig.tight_layout()
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
