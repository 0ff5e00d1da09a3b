"""Per-image influences on the macro one-vs-rest AUC, and the macro-AUC gain interval built from them."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from kdbench.evaluate.auc_influence import macro_auc_influence
from kdbench.evaluate.fidelity import decode_scores, encode_scores
from kdbench.report.delong import auc_gain_interval, influence_gain_interval


def _probs(rng, y, k, noise):
    z = rng.normal(size=(len(y), k)) * noise
    z[np.arange(len(y)), y] += 1.0
    p = np.exp(z)
    return p / p.sum(1, keepdims=True)


def test_influence_is_the_formula_written_out_pair_by_pair_with_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 40)
    probs = np.round(_probs(rng, y, 3, 1.0), 1)  # rounded: many ties, which count one half
    phi = np.zeros(len(y))
    for c in range(3):
        pos, neg = np.flatnonzero(y == c), np.flatnonzero(y != c)
        s = probs[:, c]
        h = (s[pos][:, None] > s[neg][None, :]) + 0.5 * (s[pos][:, None] == s[neg][None, :])
        auc = roc_auc_score(y == c, s)
        assert h.mean() == pytest.approx(auc)
        pi = len(pos) / len(y)
        phi[pos] += (h.mean(1) - auc) / pi  # V10: share of negatives each positive outranks
        phi[neg] += (h.mean(0) - auc) / (1 - pi)  # V01: share of positives that outrank each negative
    assert np.allclose(macro_auc_influence(probs, y), phi / 3)
    assert abs(phi.mean()) < 1e-12


def test_variance_of_the_influence_is_delongs_for_one_class():
    """Two classes: var(phi)/N is DeLong's S10/m + S01/n with population variances."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    p = _probs(rng, y, 2, 1.5)
    pos, neg = p[y == 1, 1], p[y == 0, 1]
    h = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    delong = np.var(h.mean(1)) / len(pos) + np.var(h.mean(0)) / len(neg)
    phi = macro_auc_influence(p, y)  # both one-vs-rest AUCs are the same curve
    assert np.var(phi) / len(y) == pytest.approx(delong, rel=1e-9)


def _weighted_macro_auc(probs, y, w):
    aucs = []
    for c in range(probs.shape[1]):
        pos, neg = y == c, y != c
        s = probs[:, c]
        h = (s[pos][:, None] > s[neg][None, :]) + 0.5 * (s[pos][:, None] == s[neg][None, :])
        aucs.append(w[pos] @ h @ w[neg] / (w[pos].sum() * w[neg].sum()))
    return np.mean(aucs)


def test_influence_is_the_derivative_of_the_macro_auc_under_reweighting():
    """The definition, not the formula: moving an epsilon of weight onto image i changes the AUC by eps * phi(i)."""
    rng = np.random.default_rng(6)
    n = 30
    y = rng.integers(0, 3, n)
    probs = np.round(_probs(rng, y, 3, 1.0), 1)  # ties included
    phi = macro_auc_influence(probs, y)
    base, eps = _weighted_macro_auc(probs, y, np.full(n, 1 / n)), 1e-6
    for i in (0, 7, 19):
        w = np.full(n, (1 - eps) / n)
        w[i] += eps
        assert (_weighted_macro_auc(probs, y, w) - base) / eps == pytest.approx(phi[i], abs=1e-4)


def test_two_class_interval_over_seeds_is_delongs():
    """Several seeds, two classes: the influence form gives auc_gain_interval's interval (up to m/(m-1))."""
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 500)
    pairs, influences = [], []
    for noise in (1.0, 1.1, 0.9):
        a, b = _probs(rng, y, 2, noise), _probs(rng, y, 2, noise + 0.5)
        pairs.append((a[:, 1], b[:, 1]))
        influences.append((roc_auc_score(y, a[:, 1]), roc_auc_score(y, b[:, 1]),
                           macro_auc_influence(a, y), macro_auc_influence(b, y)))
    gain, lo, hi = auc_gain_interval(pairs, y)
    igain, ilo, ihi = influence_gain_interval(influences)
    assert igain == pytest.approx(gain, abs=1e-12)
    assert ihi - ilo == pytest.approx(hi - lo, rel=0.01)


def test_gain_interval_matches_a_paired_bootstrap_of_the_macro_auc():
    rng = np.random.default_rng(2)
    n, k = 400, 4
    y = rng.integers(0, k, n)
    a, b = _probs(rng, y, k, 1.0), _probs(rng, y, k, 2.0)
    auc_a = roc_auc_score(y, a, multi_class="ovr")
    auc_b = roc_auc_score(y, b, multi_class="ovr")
    gain, lo, hi = influence_gain_interval([(auc_a, auc_b, macro_auc_influence(a, y), macro_auc_influence(b, y))])
    boot = []
    for _ in range(250):
        i = rng.integers(0, n, n)
        boot.append(roc_auc_score(y[i], a[i], multi_class="ovr") - roc_auc_score(y[i], b[i], multi_class="ovr"))
    assert gain == pytest.approx(auc_a - auc_b)
    assert (hi - lo) / (2 * 1.959964) == pytest.approx(np.std(boot), rel=0.15)
    assert lo > 0  # a clearly better model: the interval excludes 0


def test_identical_models_gain_zero_with_a_zero_width_interval():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 60)
    p = _probs(rng, y, 3, 1.0)
    phi = macro_auc_influence(p, y)
    auc = roc_auc_score(y, p, multi_class="ovr")
    assert influence_gain_interval([(auc, auc, phi, phi)] * 3) == (0.0, 0.0, 0.0)


def test_between_seed_variance_widens_the_interval():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 200)
    p = _probs(rng, y, 3, 1.0)
    phi = macro_auc_influence(p, y)
    same = influence_gain_interval([(0.9, 0.88, phi, phi * 0.9)] * 3)
    varied = influence_gain_interval([(0.9, 0.86, phi, phi * 0.9), (0.9, 0.90, phi, phi * 0.9),
                                      (0.9, 0.88, phi, phi * 0.9)])
    assert same[0] == pytest.approx(varied[0])
    assert varied[2] - varied[1] > same[2] - same[1]


def test_a_class_missing_from_the_test_split_is_refused():
    with pytest.raises(ValueError, match="class 2"):
        macro_auc_influence(np.full((4, 3), 1 / 3), np.array([0, 1, 0, 1]))


def test_influences_round_trip_in_float32():
    phi = np.random.default_rng(5).normal(size=3421)
    assert np.allclose(decode_scores(encode_scores(phi)), phi, rtol=1e-6)


def test_a_seed_without_influences_voids_the_interval_rather_than_shrinking_it():
    """A run resumed from an older runs.jsonl: one seed's method row lacks the column."""
    import pandas as pd

    from kdbench.report.intervals import add_gain_intervals

    rng = np.random.default_rng(8)
    y = rng.integers(0, 3, 80)
    rows = []
    for seed in (0, 1):
        for method, noise in (("scratch", 1.5), ("hinton", 1.0)):
            p = _probs(rng, y, 3, noise)
            rows.append({"dataset": "d", "teacher": "t", "student": "s", "fraction": 1.0, "seed": seed,
                         "method": method, "auc": roc_auc_score(y, p, multi_class="ovr"),
                         "test_auc_influence": encode_scores(macro_auc_influence(p, y))})
    df = pd.DataFrame(rows)
    agg = pd.DataFrame([{"dataset": "d", "teacher": "t", "student": "s", "fraction": 1.0, "method": "hinton"}])
    assert np.isfinite(add_gain_intervals(agg, df)[["gain_auc_lo_mean", "gain_auc_hi_mean"]].to_numpy()).all()
    df.loc[(df["method"] == "hinton") & (df["seed"] == 1), "test_auc_influence"] = None
    assert add_gain_intervals(agg, df)[["gain_auc_lo_mean", "gain_auc_hi_mean"]].isna().all(axis=None)
