"""Leaderboards: rows -> one pandas frame per table -> mean ± std over seeds, ranks, gains.

Tables:

- ``predictive``: one row per dataset/teacher/student/method/fraction (the teacher is a
  reference row): accuracy, AUC, F1, gain over ``scratch``, params, FLOPs, latency;
- ``explanations``: one row per model and explainer (the random baseline included), one
  column per Quantus metric; ranks compare the explainers *of one model* (a confident
  model must not lift its explainers' ranks), over the metrics that can tell a trained
  model's maps from chance and from an untrained model's (``XaiMetric.ranked``);
- ``explanations_vs_random``: per model and explainer, each metric's paired difference
  from the ``random`` baseline on the same images (> 0: better than random), mean ± std
  over seeds; the 95% bootstrap interval of each seed is in runs.jsonl and the CSV;
- ``fractions``: the less-data axis, a metric by training fraction per method.

Ranks are computed per (dataset, teacher, fraction) among the students, in each metric's direction
(1 = best; ties share the best rank); ``avg_rank`` is the mean of the quality-metric
ranks (predictive: accuracy, AUC, F1; explanations: every Quantus metric). Size and speed
are shown, not ranked into it. Renderers live in :mod:`kdbench.report.render`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kdbench.config.record import non_default_settings
from kdbench.report.intervals import add_gain_intervals, add_vs_random_intervals
from kdbench.report.references import reference_note
from kdbench.report.teacher_check import weak_teachers
from kdbench.run.results import latest_rows

GROUP = ["dataset", "teacher", "student", "method", "fraction"]
#: Ranks compare every student and method trained on the same data budget.
RANK_WITHIN = ["dataset", "teacher", "fraction"]
JOB = ["dataset", "teacher", "student", "method", "seed", "fraction", "kind", "explainer"]


@dataclass(frozen=True)
class MetricSpec:
    higher_is_better: bool
    digits: int = 3
    ranked: bool = True

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"


PREDICTIVE: dict[str, MetricSpec] = {
    "accuracy": MetricSpec(True, 3),
    "auc": MetricSpec(True, 3),
    "f1": MetricSpec(True, 3),
    "gain_accuracy": MetricSpec(True, 3, ranked=False),
    "gain_auc": MetricSpec(True, 3, ranked=False),
    "gain_f1": MetricSpec(True, 3, ranked=False),
    # 95% paired bootstrap interval of gain_accuracy over test images and seeds (report/intervals.py)
    "gain_accuracy_lo": MetricSpec(True, 3, ranked=False),
    "gain_accuracy_hi": MetricSpec(True, 3, ranked=False),
    # 95% interval of gain_auc: DeLong over test images (many classes: its influence form) plus the seeds (report/delong.py)
    "gain_auc_lo": MetricSpec(True, 3, ranked=False),
    "gain_auc_hi": MetricSpec(True, 3, ranked=False),
    "params": MetricSpec(False, 0, ranked=False),
    "flops": MetricSpec(False, 0, ranked=False),
    "latency_ms": MetricSpec(False, 2, ranked=False),
    "latency_iqr_ms": MetricSpec(False, 2, ranked=False),
    "train_seconds": MetricSpec(False, 1, ranked=False),
    # fidelity to the teacher and calibration (evaluate/fidelity.py, explain/agreement.py): reported, not ranked
    "balanced_accuracy": MetricSpec(True, 3, ranked=False),
    "teacher_agreement": MetricSpec(True, 3, ranked=False),
    "explanation_agreement": MetricSpec(True, 3, ranked=False),
    "ece": MetricSpec(False, 3, ranked=False),
}
DEFAULT_PREDICTIVE = ["accuracy", "auc", "f1", "gain_accuracy", "gain_accuracy_lo", "gain_accuracy_hi",
                      "gain_auc", "gain_auc_lo", "gain_auc_hi",
                      "balanced_accuracy", "teacher_agreement",
                      "explanation_agreement", "ece", "params", "flops", "latency_ms"]
GAIN_METRICS = ("accuracy", "auc", "f1")


def xai_specs() -> dict[str, MetricSpec]:
    from kdbench.explain.metrics import DEFAULT_METRICS, FULL_METRICS

    specs = {m.name: MetricSpec(m.higher_is_better, 3, ranked=m.ranked) for m in DEFAULT_METRICS + FULL_METRICS}
    specs["explain_ms_per_image"] = MetricSpec(False, 2, ranked=False)
    return specs


def vs_random_specs() -> dict[str, MetricSpec]:
    from kdbench.explain.metrics import DEFAULT_METRICS, FULL_METRICS

    return {f"{m.name}_vs_random": MetricSpec(True, 3, ranked=False) for m in DEFAULT_METRICS + FULL_METRICS}


@dataclass
class Table:
    """One leaderboard table: numeric frame plus what is needed to display it."""

    name: str
    title: str
    frame: pd.DataFrame  # id columns, <m>_mean, <m>_std, n, <m>_rank, avg_rank
    ids: list[str]
    metrics: list[str]
    specs: dict[str, MetricSpec]
    footnote: str = ""
    raw: dict = field(default_factory=dict)


# -- rows -------------------------------------------------------------------------------
def resolve_conflicts(rows: list[dict]) -> tuple[list[dict], list[str]]:
    """Keep one configuration per job; report jobs stored under different config hashes.

    Rows are read in order (files in the order given); for a job stored under several
    config hashes the last configuration wins, and each such job is reported.
    """
    rows = latest_rows(rows)
    last_hash: dict[tuple, str] = {}
    for r in rows:
        last_hash[tuple(r.get(k) for k in JOB)] = r.get("config_hash")
    warnings, seen = [], set()
    kept = []
    for r in rows:
        key = tuple(r.get(k) for k in JOB)
        if r.get("config_hash") != last_hash[key]:
            if key not in seen:
                seen.add(key)
                warnings.append(f"conflict: {r.get('dataset')} {r.get('student')} {r.get('method')} seed={r.get('seed')} "
                                f"fraction={r.get('fraction')} {r.get('kind')} {r.get('explainer') or ''} was stored under "
                                f"config {r.get('config_hash')} and {last_hash[key]}; using {last_hash[key]}".replace("  ", " "))
            continue
        kept.append(r)
    return kept, warnings


def ok_frame(rows: list[dict], kind: str) -> pd.DataFrame:
    df = pd.DataFrame([r for r in rows if r.get("status") == "ok" and r.get("kind", "predictive") == kind])
    return df


# -- aggregation ------------------------------------------------------------------------
def add_gains(df: pd.DataFrame) -> pd.DataFrame:
    """Per-seed gain of each method over ``scratch`` with the same student, fraction and seed."""
    keys = ["dataset", "teacher", "student", "fraction", "seed"]
    base = df[df["method"] == "scratch"][keys + list(GAIN_METRICS)].drop_duplicates(keys)
    merged = df.merge(base, on=keys, how="left", suffixes=("", "_scratch"))
    for m in GAIN_METRICS:
        merged[f"gain_{m}"] = np.where(merged["method"].isin(["scratch", "teacher"]), np.nan,
                                       merged[m] - merged[f"{m}_scratch"])
    return merged.drop(columns=[f"{m}_scratch" for m in GAIN_METRICS])


def aggregate(df: pd.DataFrame, group: list[str], metrics: list[str]) -> pd.DataFrame:
    """mean, std and n over seeds for each group."""
    for m in metrics:
        df[m] = pd.to_numeric(df[m], errors="coerce") if m in df else np.nan
    g = df.groupby(group, dropna=False, sort=False)
    out = g[metrics].agg(["mean", "std"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    out["n"] = g["seed"].nunique()
    return out.reset_index()


def add_ranks(agg: pd.DataFrame, specs: dict[str, MetricSpec], metrics: list[str], within: list[str],
              include_teacher: bool = False) -> pd.DataFrame:
    """Per-metric rank (1 = best) among the rows within ``within``; ``avg_rank`` of the quality metrics."""
    students = agg["method"].notna() if include_teacher else agg["method"] != "teacher"
    ranked = [m for m in metrics if specs[m].ranked and agg[f"{m}_mean"].notna().any()]
    for m in ranked:
        col = agg.loc[students, f"{m}_mean"]
        agg.loc[students, f"{m}_rank"] = col.groupby([agg.loc[students, k] for k in within], dropna=False).rank(
            ascending=not specs[m].higher_is_better, method="min")
    agg["avg_rank"] = agg[[f"{m}_rank" for m in ranked]].mean(axis=1) if ranked else np.nan
    return agg


def _sorted(agg: pd.DataFrame, extra: list[str] = (), sort: str | None = None,
            specs: dict[str, MetricSpec] | None = None) -> pd.DataFrame:
    """Teacher row first; then per student and fraction: scratch, then methods (or by ``sort``)."""
    order = {"teacher": 0, "scratch": 1}
    agg = agg.assign(_t=agg["method"].ne("teacher"), _o=agg["method"].map(lambda m: order.get(m, 2)))
    if sort:
        col = "avg_rank" if sort == "avg_rank" else f"{sort}_mean"
        asc = True if sort == "avg_rank" else not specs[sort].higher_is_better
        agg = agg.sort_values(["dataset", "teacher", "_t", col], ascending=[True, True, True, asc],
                              na_position="last")
    else:
        agg = agg.sort_values(["dataset", "teacher", "_t", "student", "fraction", "_o", "method", *extra])
    return agg.drop(columns=["_t", "_o"]).reset_index(drop=True)


def predictive_table(rows: list[dict], metrics: list[str] | None = None, sort: str | None = None) -> Table | None:
    df = ok_frame(rows, "predictive")
    if df.empty:
        return None
    df = add_gains(df)
    interval_columns = ("gain_accuracy_lo", "gain_accuracy_hi", "gain_auc_lo", "gain_auc_hi")
    agg = aggregate(df, GROUP, [m for m in PREDICTIVE if m not in interval_columns])
    agg = add_gain_intervals(agg, df)
    # a default column no row has a value for (rows written before it existed) is left out
    wanted = [m for m in (metrics or DEFAULT_PREDICTIVE) if m in PREDICTIVE and
              (metrics or agg[f"{m}_mean"].notna().any())]
    agg = add_ranks(agg, PREDICTIVE, wanted, RANK_WITHIN)
    agg = _sorted(agg, sort=sort if sort in wanted + ["avg_rank"] else None, specs=PREDICTIVE)
    return Table("predictive", "Predictive metrics", agg, GROUP + ["n"], wanted, PREDICTIVE, footnote(rows))


def explanation_table(rows: list[dict], metrics: list[str] | None = None, sort: str | None = None) -> Table | None:
    df = ok_frame(rows, "explanation")
    if df.empty:
        return None
    specs = xai_specs()
    present = [m for m in specs if m in df and pd.to_numeric(df[m], errors="coerce").notna().any()]
    wanted = [m for m in (metrics or present) if m in present] or present
    agg = aggregate(df, GROUP + ["explainer"], present)
    agg = add_ranks(agg, specs, wanted, GROUP, include_teacher=True)  # explainers ranked within each model
    agg = agg.assign(_r=agg["explainer"].eq("random"))
    agg = _sorted(agg, ["_r", "explainer"], sort=sort if sort in wanted + ["avg_rank"] else None, specs=specs)
    return Table("explanations", "Explanation metrics (Quantus)", agg.drop(columns="_r"),
                 GROUP + ["explainer", "n"], wanted, specs, xai_footnote(rows))


def vs_random_table(rows: list[dict]) -> Table | None:
    """Each explanation score minus its model's ``random`` score on the same images (> 0: better)."""
    df = ok_frame(rows, "explanation")
    specs = vs_random_specs()
    present = [m for m in specs if m in df and pd.to_numeric(df[m], errors="coerce").notna().any()]
    if df.empty or not present:
        return None
    df = df[df["explainer"] != "random"].copy()
    # each seed's own bounds are not averaged: the interval of the seed mean is built from them
    agg = aggregate(df, GROUP + ["explainer"], present)
    agg = add_vs_random_intervals(agg, df, present, GROUP + ["explainer"])
    agg = _sorted(agg, ["explainer"])
    return Table("explanations_vs_random", "Explanation metrics against the random baseline (paired, > 0 is better)",
                 agg, GROUP + ["explainer", "n"], present, specs,
                 "Per model and explainer: the metric minus the `random` explainer's on the same images of the same "
                 "model, oriented so that > 0 means better than random; mean ± std over seeds. Each seed's 95% "
                 "bootstrap interval over the images is in runs.jsonl (`<metric>_vs_random_lo/_hi`); "
                 "leaderboard_explanations_vs_random.csv has the 95% interval of the seed mean (`_lo_mean`, "
                 "`_hi_mean`): the seeds' image variance, taken as fully correlated since every seed scores the same "
                 "images, plus the between-seed variance, with Student's t.")


def fraction_table(rows: list[dict], metric: str = "accuracy") -> Table | None:
    """The less-data axis: ``metric`` by training fraction, one row per method."""
    df = ok_frame(rows, "predictive")
    if df.empty or df["fraction"].nunique() < 2:
        return None
    metric = metric if metric in GAIN_METRICS else "accuracy"
    df = df[df["method"] != "teacher"].copy()
    agg = aggregate(df, GROUP, [metric])
    fractions = sorted(agg["fraction"].unique())
    wide = agg.pivot_table(index=["dataset", "teacher", "student", "method"], columns="fraction",
                           values=[f"{metric}_mean", f"{metric}_std", "n"], aggfunc="first",
                           dropna=False)  # one seed: every std is NaN, and the columns must stay
    frame = pd.DataFrame(index=wide.index)
    specs = {}
    for f in fractions:
        name = f"{metric}@{f:g}"
        frame[f"{name}_mean"] = wide[(f"{metric}_mean", f)]
        frame[f"{name}_std"] = wide[(f"{metric}_std", f)]
        specs[name] = MetricSpec(PREDICTIVE[metric].higher_is_better, 3, ranked=True)
    frame["n"] = wide["n"].max(axis=1)
    frame = frame.reset_index()
    frame["fraction"] = np.nan
    frame = add_ranks(frame, specs, list(specs), ["dataset", "teacher"])
    order = {"scratch": 0}
    frame = frame.assign(_o=frame["method"].map(lambda m: order.get(m, 1)))
    frame = frame.sort_values(["dataset", "teacher", "student", "_o", "method"]).drop(columns="_o")
    return Table("fractions", f"Less data: {metric} by training fraction", frame.reset_index(drop=True),
                 ["dataset", "teacher", "student", "method", "n"], list(specs), specs,
                 f"{metric} ({PREDICTIVE[metric].arrow}) of students distilled on a stratified, seed-fixed fraction "
                 f"of the training split; the teacher always saw all of it. Mean ± std over seeds.")


def build_tables(rows: list[dict], metrics: list[str] | None = None,
                 sort: str | None = None) -> tuple[list[Table], list[str]]:
    """Every table of a result set, and the conflicts found while merging it."""
    rows, warnings = resolve_conflicts(rows)
    pred_metrics = [m for m in metrics or [] if m in PREDICTIVE] or None
    xai_metrics = [m for m in metrics or [] if m in xai_specs()] or None
    tables = [predictive_table(rows, pred_metrics, sort), explanation_table(rows, xai_metrics, sort),
              vs_random_table(rows), fraction_table(rows, (pred_metrics or ["accuracy"])[0])]
    return [t for t in tables if t is not None], warnings


# -- footnotes --------------------------------------------------------------------------
def footnote(rows: list[dict]) -> str:
    directions = ", ".join(f"{m} {s.arrow}" for m, s in PREDICTIVE.items())
    options = sorted({f"{r['method']}: {', '.join(f'{k}={v}' for k, v in r['method_options'].items())}"
                      for r in rows if r.get("method_options")})
    settings = non_default_settings(rows)
    iqrs = [r["latency_iqr_ms"] for r in rows if isinstance(r.get("latency_iqr_ms"), (int, float))]
    spread = f" (interquartile range of its repeats up to {max(iqrs):.2f} ms, column latency_iqr_ms)" if iqrs else ""
    weak = "".join(f" Warning: {w}." for w in weak_teachers(rows))
    refs = reference_note(r.get("dataset") for r in rows if r.get("method") == "teacher")
    weak = f" {refs}{weak}" if refs else weak
    opts = f" Non-default method options: {'; '.join(options)}." if options else " All methods at their defaults."
    opts += f" Non-default settings: {'; '.join(settings)}." if settings else " Training at kdbench's defaults."
    return (f"Mean ± std over n seeds. ↑ higher is better, ↓ lower is better: {directions}. "
            f"gain_*: the metric minus that of `scratch` (same student, fraction and seed). "
            f"avg_rank: mean rank over accuracy, AUC and F1 among the students at the same fraction. "
            f"balanced_accuracy: mean per-class recall; teacher_agreement: share of test images where the "
            f"student's top-1 class is the teacher's; explanation_agreement: mean cosine between the student's and "
            f"the teacher's Grad-CAM of the teacher's class at input resolution (e2KD's measure); ece: expected "
            f"calibration error, 15 bins. gain_accuracy_lo/hi: 95% interval of the seed-averaged accuracy gain over "
            f"scratch, its test-image variance from a paired bootstrap (one resample of the test images for both "
            f"models and every seed, 2000 resamples) plus the between-seed variance of the gain; gain_auc_lo/hi: the "
            f"same for the AUC gain with DeLong's variance over the test images (for many classes in its influence "
            f"form, of the macro AUC); both with Student's t (Welch-Satterthwaite degrees of freedom, S-1 when the "
            f"seeds dominate). † after a gain: its "
            f"95% interval excludes 0, so neither the test sample nor the seeds explain it. "
            f"flops per image (2 per multiply-add); latency: batch-1 CPU median by torch.utils.benchmark{spread}.{opts} "
            f"{provenance([r for r in rows if r.get('status') == 'ok'])}.{weak}")


def distinct_values(rows: list[dict], key: str) -> str:
    """Every distinct value of ``key`` in the rows, sorted ("x and y"), or "?" when none has one."""
    found = {r[key] for r in rows if r.get(key) not in (None, "")}
    try:
        ordered = sorted(found)  # 32 before 128
    except TypeError:
        ordered = sorted(found, key=str)
    return " and ".join(map(str, ordered)) or "?"


def provenance(rows: list[dict]) -> str:
    """Versions, device and dates of the rows: every distinct value, the dates as a range.

    A benchmark resumed on another day, or extended after an upgrade, holds rows of both;
    quoting the first row alone dated a run that finished on 2026-12-06 as 2026-12-05.
    """
    days = sorted({str(r["timestamp"])[:10] for r in rows if r.get("timestamp")})
    when = "" if not days else days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"
    parts = [f"{name} {distinct_values(rows, f'{name}_version')}" for name in ("kdbench", "torch", "timm", "quantus")]
    parts.append(f"device {distinct_values(rows, 'device')}")
    return ", ".join(parts + ([when] if when else []))


def xai_footnote(rows: list[dict]) -> str:
    from kdbench.explain.metrics import DEFAULT_METRICS, FULL_METRICS

    used = {k for r in rows if r.get("kind") == "explanation" for k in r}
    described = "; ".join(m.describe() for m in DEFAULT_METRICS + FULL_METRICS if m.name in used)
    scored = [r for r in rows if r.get("kind") == "explanation" and r.get("status") == "ok"]
    quantus, images = distinct_values(scored, "quantus_version"), distinct_values(scored, "xai_samples")
    return (f"Quantus {quantus} metrics (↑ higher / ↓ lower is better; non-default "
            f"parameters in brackets): {described}. Mean over a fixed, class-stratified subset of "
            f"{images} test images, then mean ± std over seeds. `random` is uniform noise: "
            f"the chance level of every column. Ranks compare the explainers of one model; avg_rank: mean rank "
            f"over the ranked metrics ({', '.join(m.name for m in DEFAULT_METRICS + FULL_METRICS if m.ranked and m.name in used)}). "
            f"Not ranked, because on the synthetic set they cannot tell a trained model's Grad-CAM or integrated "
            f"gradients from random or from an untrained model's maps (docs/explanation-metrics.md): "
            f"{', '.join(m.name for m in DEFAULT_METRICS + FULL_METRICS if not m.ranked and m.name in used) or 'none'}. "
            f"explain_ms_per_image: attribution time only.{curve_steps_note(scored, used)}")


def curve_steps_note(scored: list[dict], used: set) -> str:
    """`` Perturbation steps per image: pixel_flipping 16.``, from the rows' ``xai_curve_steps``.

    A pixel-flipping AUC grows with its steps, so a table says how many its rows took.
    Rows from before 2026-12-06 do not record them; they took H*W/16 of the C*H*W values
    per step, whatever ``features_in_step`` the footnote now names.
    """
    from kdbench.explain.metrics import DEFAULT_METRICS, FULL_METRICS

    parts = []
    for m in DEFAULT_METRICS + FULL_METRICS:
        if "features_in_step" not in m.params or m.name not in used:
            continue
        have = [r for r in scored if m.name in r]
        steps = {r["xai_curve_steps"][m.name] for r in have
                 if isinstance(r.get("xai_curve_steps"), dict) and m.name in r["xai_curve_steps"]}
        old = sum(not isinstance(r.get("xai_curve_steps"), dict) for r in have)
        said = " and ".join(map(str, sorted(steps)))
        if old:
            said = (f"{said}; " if said else "") + (f"not recorded in {old} rows scored before 2026-12-06, whose "
                                                    f"steps were H*W/16 of the C*H*W values (16C steps)")
        if said:
            parts.append(f"{m.name} {said}")
    return f" Perturbation steps per image: {'; '.join(parts)}." if parts else ""
