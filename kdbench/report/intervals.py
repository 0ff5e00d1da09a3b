"""95% confidence intervals for a method's gain over ``scratch``: test images and seeds.

A gain "beyond two seed-stds" judged by eye from three seeds is not evidence. Each
predictive row stores which test images its model got right (``test_correct``), so the
accuracy gain of a method over ``scratch`` (same dataset, teacher, student, fraction and
seed) can be taken apart the way the experiment varies. Seeds and test images are
crossed, not nested: every seed's two models are scored on the same images, and an image
that the method gets right in one seed it tends to get right in the others. So the
test-sample variance of the seed-averaged gain comes from a paired bootstrap that draws
one resample of the images and applies it to both models of every seed (a fresh resample
per seed would shrink it by up to the number of seeds), and the seeds add the
between-seed variance of the per-seed gains, with Student's t for the few seeds
(report/gain_interval.py). An interval that excludes 0 is a gain (or loss) that neither
the test sample nor the seeds explain.

:func:`add_vs_random_intervals` does the same for an explanation's score over the ``random``
explainer's, from each seed's own interval over the explained images.

For binary tasks, rows also store each test image's positive-class score, and the AUC gain
gets a DeLong interval (report/delong.py) in ``gain_auc_lo`` / ``gain_auc_hi``. Many-class
rows store each test image's influence on the macro AUC instead (``test_auc_influence``),
and the macro-AUC gain gets the same interval in DeLong's influence form.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from kdbench.evaluate.fidelity import decode_correct, decode_scores
from kdbench.report.delong import auc_gain_interval, influence_gain_interval
from kdbench.report.gain_interval import gain_interval

#: Bootstrap resamples and the generator seed: fixed, so a table is reproducible.
RESAMPLES = 2000
SEED = 0
KEYS = ["dataset", "teacher", "student", "fraction"]


def paired_gain_interval(pairs: list[tuple[np.ndarray, np.ndarray]], resamples: int = RESAMPLES,
                         seed: int = SEED, level: float = 0.95) -> tuple[float, float]:
    """``pairs``: per seed, (method correct, scratch correct) over the same test images, in the same order."""
    diffs = np.stack([m.astype(float) - s.astype(float) for m, s in pairs])  # seeds x images
    per_image = diffs.mean(axis=0)  # each image's gain, averaged over the seeds
    rng = np.random.default_rng(seed)
    n = per_image.size
    chunks = [min(256, resamples - start) for start in range(0, resamples, 256)]  # bounded memory
    boot = np.concatenate([per_image[rng.integers(0, n, (size, n))].mean(axis=1) for size in chunks])
    _, lo, hi = gain_interval(float(per_image.mean()), float(np.var(boot, ddof=1)), diffs.mean(axis=1), level)
    return float(lo), float(hi)


def _paired(rows: pd.DataFrame, agg_row: pd.Series, column: str, decode) -> list[tuple]:
    """Per seed, (method's decoded ``column``, scratch's) for one aggregated row; [] if any seed lacks a pair.

    A seed whose method row lacks the column (a run resumed from an older runs.jsonl) voids the
    interval rather than leaving it to the other seeds: the gain and its mark average all seeds.
    """
    mine = rows[(rows["method"] == agg_row["method"]) & (rows[KEYS] == agg_row[KEYS]).all(axis=1)]
    if mine.empty or mine[column].isna().any():
        return []
    scratch = rows[(rows["method"] == "scratch") & rows[column].notna()]
    scratch = {(*r[KEYS], r["seed"]): r for _, r in scratch.iterrows()}
    pairs = []
    for _, r in mine.iterrows():
        base = scratch.get((*r[KEYS], r["seed"]))
        if base is None:
            return []
        m, s = decode(r[column]), decode(base[column])
        if len(s) != len(m):
            return []
        pairs.append((m, s, r, base))
    if len({len(m) for m, *_ in pairs}) > 1:  # seeds scored on different test sets: nothing to pair
        return []
    return pairs


def add_gain_intervals(agg: pd.DataFrame, df: pd.DataFrame) -> pd.DataFrame:
    """Per aggregated row (NaN where not computable): ``gain_accuracy_lo/hi_mean`` (paired bootstrap)
    and ``gain_auc_lo/hi_mean`` (DeLong: from scores for binary tasks, from influences for many classes)."""
    agg = agg.copy()
    for metric in ("accuracy", "auc"):
        for bound in ("lo", "hi"):
            agg[f"gain_{metric}_{bound}_mean"] = np.nan
            agg[f"gain_{metric}_{bound}_std"] = np.nan
    for i, a in agg.iterrows():
        if a["method"] in ("scratch", "teacher"):
            continue
        if "test_correct" in df:
            pairs = _paired(df, a, "test_correct", decode_correct)
            if pairs:
                agg.loc[i, ["gain_accuracy_lo_mean", "gain_accuracy_hi_mean"]] = \
                    paired_gain_interval([(m, s) for m, s, _, _ in pairs])
        if "test_scores" in df and "test_labels" in df:
            pairs = _paired(df, a, "test_scores", decode_scores)
            labels = {str(r["test_labels"]) for _, _, r, _ in pairs} | {str(b["test_labels"]) for *_, b in pairs}
            if pairs and len(labels) == 1 and "nan" not in labels:  # every model scored the same test set
                try:
                    _, lo, hi = auc_gain_interval([(m, s) for m, s, _, _ in pairs], decode_correct(labels.pop()))
                except ValueError:  # fewer than two images of a class: no DeLong variance
                    continue
                agg.loc[i, ["gain_auc_lo_mean", "gain_auc_hi_mean"]] = lo, hi
        if "test_auc_influence" in df:
            pairs = _paired(df, a, "test_auc_influence", decode_scores)
            if pairs and all(np.isfinite([r["auc"], b["auc"]]).all() for _, _, r, b in pairs):
                _, lo, hi = influence_gain_interval([(r["auc"], b["auc"], m, s) for m, s, r, b in pairs])
                agg.loc[i, ["gain_auc_lo_mean", "gain_auc_hi_mean"]] = lo, hi
    return agg


def add_vs_random_intervals(agg: pd.DataFrame, df: pd.DataFrame, metrics: list[str], group: list[str],
                            level: float = 0.95) -> pd.DataFrame:
    """Add ``<m>_lo_mean``/``<m>_hi_mean``: the interval of the seed-averaged ``<m>``, from each seed's ``<m>_lo/_hi``.

    Each explanation row carries its own seed's bootstrap interval over the images of the
    fixed evaluation subset; the mean of those bounds would ignore how the seeds differ. The
    subset is the same for every seed, so the seeds' image errors may be fully correlated:
    the test-sample variance is taken as ``(mean_s sd_s)²``, its upper bound, with each
    ``sd_s = (hi_s - lo_s) / (2 z)`` (z the normal quantile); the seeds add ``s² / S`` with Student's t, as for the gains.
    """
    agg = agg.copy()
    width_per_sd = 2 * float(norm.ppf(0.5 + level / 2))
    for m in metrics:
        if f"{m}_lo" not in df or f"{m}_hi" not in df:
            continue
        out = []
        for keys, g in df.groupby(group, dropna=False, sort=False):
            v, lo, hi = (pd.to_numeric(g[c], errors="coerce") for c in (m, f"{m}_lo", f"{m}_hi"))
            ok = v.notna() & lo.notna() & hi.notna()
            bounds = (np.nan, np.nan)
            if ok.any():
                sd = float(((hi - lo)[ok] / width_per_sd).mean())
                _, *bounds = gain_interval(float(v[ok].mean()), sd ** 2, v[ok].to_numpy(), level)
            out.append((*keys, *bounds))
        new = pd.DataFrame(out, columns=[*group, f"{m}_lo_mean", f"{m}_hi_mean"])
        agg = agg.drop(columns=[f"{m}_lo_mean", f"{m}_hi_mean"], errors="ignore").merge(new, on=group, how="left")
    return agg
