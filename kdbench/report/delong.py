"""DeLong confidence intervals for AUC gains (binary tasks; many-class sets in influence form).

A bootstrap of the AUC gain would need every model's scores resampled thousands of times;
DeLong, DeLong and Clarke-Pearson (Biometrics 1988) give the covariance of several AUCs
measured on the same test images in closed form, from each image's *placement*: the share
of the other class's images it outranks. kdbench uses the fast midrank algorithm of Sun
and Xu (IEEE SPL 2014), in which ties count one half, exactly as in
``sklearn.metrics.roc_auc_score``.

The gain of a method over ``scratch`` is averaged over seeds, and every seed's models are
scored on the same test images, so the gain is one linear contrast of 2 x seeds AUCs:
``c = (1/S, ..., 1/S, -1/S, ..., -1/S)``, with variance ``c' Σ c`` from DeLong's
covariance ``Σ``: the uncertainty from the test sample, given the trained models. The
trained models themselves vary with the seed, so, as for the accuracy gain, the interval
adds the between-seed variance of the per-seed gains over the number of seeds, ``s² / S``,
with Student's t for the few seeds (report/gain_interval.py):

    gain ± t_nu sqrt(c' Σ c + s² / S)

With one seed, only the test-sample term remains, with the normal quantile (the footnote
says how many seeds).

Many-class sets report the macro one-vs-rest AUC; each row stores every test image's
influence on it (evaluate/auc_influence.py), DeLong's placements in a form that sums over
classes, and :func:`influence_gain_interval` takes ``c' Σ c`` as the variance over images of
the seed-averaged influence difference divided by the number of images, plus the same
between-seed term.
"""

from __future__ import annotations

import numpy as np

from kdbench.evaluate.auc_influence import outranked
from kdbench.report.gain_interval import gain_interval


def delong_covariance(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of ``k`` score vectors on the same images, and their ``k x k`` DeLong covariance.

    ``scores``: shape ``(k, n_images)``; ``labels``: 0/1 of shape ``(n_images,)``.
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    labels = np.asarray(labels).ravel().astype(bool)
    m, n = int(labels.sum()), int((~labels).sum())
    if m < 2 or n < 2:
        raise ValueError(f"DeLong needs at least two images of each class, not {m} positive and {n} negative")
    below_pos, below_neg = outranked(scores, labels)
    aucs = below_pos.sum(axis=1) / (m * n)
    v_pos = below_pos / n  # per positive: share of negatives it outranks
    v_neg = 1.0 - below_neg / m  # per negative: share of positives that outrank it
    cov = np.atleast_2d(np.cov(v_pos)) / m + np.atleast_2d(np.cov(v_neg)) / n
    return aucs, cov


def auc_gain_interval(pairs: list[tuple[np.ndarray, np.ndarray]], labels: np.ndarray,
                      level: float = 0.95) -> tuple[float, float, float]:
    """Mean AUC gain over seeds and its interval (DeLong for the test sample, plus the seeds): ``(gain, lo, hi)``.

    ``pairs``: per seed, (method scores, scratch scores) on the same test images in the
    same order; ``labels``: those images' 0/1 labels.
    """
    k = len(pairs)
    scores = np.stack([p[0] for p in pairs] + [p[1] for p in pairs])
    aucs, cov = delong_covariance(scores, labels)
    contrast = np.concatenate([np.full(k, 1.0 / k), np.full(k, -1.0 / k)])
    return gain_interval(float(contrast @ aucs), max(contrast @ cov @ contrast, 0.0), aucs[:k] - aucs[k:], level)


def influence_gain_interval(pairs: list[tuple[float, float, np.ndarray, np.ndarray]],
                            level: float = 0.95) -> tuple[float, float, float]:
    """Mean macro-AUC gain over seeds and its interval, from per-image influences: ``(gain, lo, hi)``.

    ``pairs``: per seed, (method AUC, scratch AUC, method influences, scratch influences), the
    influences on the same test images in the same order (evaluate/auc_influence.py).
    """
    per_seed = np.array([a - b for a, b, _, _ in pairs], dtype=np.float64)
    psi = np.mean([np.asarray(pa, np.float64) - np.asarray(pb, np.float64) for _, _, pa, pb in pairs], axis=0)
    return gain_interval(float(per_seed.mean()), float(np.var(psi)) / psi.size, per_seed, level)
