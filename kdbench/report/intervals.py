"""95% confidence intervals for a method's accuracy gain over ``scratch``: a paired bootstrap.

A gain "beyond two seed-stds" judged by eye from three seeds is not evidence. Each
predictive row stores which test images its model got right (``test_correct``), so the gain
of a method over ``scratch`` (same dataset, teacher, student, fraction and seed) can be
resampled the way the experiment varies: seeds with replacement, then test images with
replacement, the same images for both models (paired). The interval is the 2.5th and 97.5th
percentiles of the resampled mean gain. An interval that excludes 0 is a gain (or loss)
that neither the test sample nor the seeds explain.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kdbench.evaluate.fidelity import decode_correct

#: Bootstrap resamples and the generator seed: fixed, so a table is reproducible.
RESAMPLES = 2000
SEED = 0
KEYS = ["dataset", "teacher", "student", "fraction"]


def paired_gain_interval(pairs: list[tuple[np.ndarray, np.ndarray]], resamples: int = RESAMPLES,
                         seed: int = SEED) -> tuple[float, float]:
    """``pairs``: per seed, (method correct, scratch correct) over the same test images."""
    rng = np.random.default_rng(seed)
    diffs = [m.astype(float) - s.astype(float) for m, s in pairs]
    gains = np.empty(resamples)
    for b in range(resamples):
        chosen = rng.integers(0, len(diffs), len(diffs)) if len(diffs) > 1 else [0]
        gains[b] = np.mean([diffs[i][rng.integers(0, len(diffs[i]), len(diffs[i]))].mean() for i in chosen])
    lo, hi = np.percentile(gains, [2.5, 97.5])
    return float(lo), float(hi)


def add_gain_intervals(agg: pd.DataFrame, df: pd.DataFrame) -> pd.DataFrame:
    """``gain_accuracy_lo_mean`` / ``gain_accuracy_hi_mean`` per aggregated row (NaN where not computable)."""
    agg = agg.copy()
    agg["gain_accuracy_lo_mean"] = np.nan
    agg["gain_accuracy_hi_mean"] = np.nan
    agg["gain_accuracy_lo_std"] = np.nan
    agg["gain_accuracy_hi_std"] = np.nan
    if "test_correct" not in df:
        return agg
    rows = df[df["test_correct"].notna()]
    scratch = {(*r[KEYS], r["seed"]): r["test_correct"] for _, r in rows[rows["method"] == "scratch"].iterrows()}
    for i, a in agg.iterrows():
        if a["method"] in ("scratch", "teacher"):
            continue
        mine = rows[(rows["method"] == a["method"]) & (rows[KEYS] == a[KEYS]).all(axis=1)]
        pairs = []
        for _, r in mine.iterrows():
            base = scratch.get((*r[KEYS], r["seed"]))
            m = decode_correct(r["test_correct"])
            s = decode_correct(base) if base is not None else None
            if s is None or len(s) != len(m):
                pairs = []
                break
            pairs.append((m, s))
        if pairs:
            agg.loc[i, ["gain_accuracy_lo_mean", "gain_accuracy_hi_mean"]] = paired_gain_interval(pairs)
    return agg
