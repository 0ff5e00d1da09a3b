"""DeLong intervals of AUC gains: checked against the definition, sklearn and resampling."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import t as student_t
from sklearn.metrics import roc_auc_score

from kdbench.evaluate.fidelity import decode_correct, decode_scores, encode_scores
from kdbench.report.delong import auc_gain_interval, delong_covariance


def brute_force(scores: np.ndarray, labels: np.ndarray):
    """DeLong et al. (1988) written out: psi(x, y) = 1, 1/2, 0; structural components; their covariances."""
    pos, neg = scores[:, labels == 1], scores[:, labels == 0]
    m, n = pos.shape[1], neg.shape[1]
    psi = (pos[:, :, None] > neg[:, None, :]) + 0.5 * (pos[:, :, None] == neg[:, None, :])  # (k, m, n)
    v10, v01 = psi.mean(axis=2), psi.mean(axis=1)  # per positive, per negative
    aucs = psi.mean(axis=(1, 2))
    s10 = (v10 - aucs[:, None]) @ (v10 - aucs[:, None]).T / (m - 1)
    s01 = (v01 - aucs[:, None]) @ (v01 - aucs[:, None]).T / (n - 1)
    return aucs, s10 / m + s01 / n


def test_aucs_and_covariance_match_the_definition_with_ties():
    rng = np.random.default_rng(0)
    labels = (rng.random(80) < 0.4).astype(int)
    scores = np.round(rng.random((3, 80)) + 0.4 * labels, 1)  # rounded: many ties
    aucs, cov = delong_covariance(scores, labels)
    ref_aucs, ref_cov = brute_force(scores, labels)
    assert np.allclose(aucs, ref_aucs) and np.allclose(cov, ref_cov)
    assert np.allclose(aucs, [roc_auc_score(labels, s) for s in scores])


def test_variance_matches_the_spread_of_auc_over_fresh_test_sets():
    rng = np.random.default_rng(1)

    def test_set(n=300):
        labels = (rng.random(n) < 0.3).astype(int)
        return rng.normal(labels * 1.0, 1.0)[None], labels

    aucs, variances = [], []
    for _ in range(400):
        s, y = test_set()
        a, c = delong_covariance(s, y)
        aucs.append(a[0])
        variances.append(c[0, 0])
    assert np.mean(variances) == pytest.approx(np.var(aucs), rel=0.2)


def test_identical_models_gain_zero_with_a_zero_width_interval():
    rng = np.random.default_rng(2)
    labels = (rng.random(100) < 0.5).astype(int)
    s = rng.random((2, 100)) + 0.3 * labels
    gain, lo, hi = auc_gain_interval([(s[0], s[0]), (s[1], s[1])], labels)
    assert gain == 0 and lo == pytest.approx(0, abs=1e-12) and hi == pytest.approx(0, abs=1e-12)


def test_a_clearly_better_model_gets_an_interval_above_zero_that_brackets_its_gain():
    rng = np.random.default_rng(3)
    labels = (rng.random(600) < 0.5).astype(int)
    pairs = []
    for _ in range(3):
        noise = rng.normal(size=600)
        pairs.append((labels * 2.0 + noise, labels * 0.5 + noise + rng.normal(size=600)))
    gain, lo, hi = auc_gain_interval(pairs, labels)
    observed = np.mean([roc_auc_score(labels, m) - roc_auc_score(labels, s) for m, s in pairs])
    assert gain == pytest.approx(observed) and 0 < lo < gain < hi
    # the test-sample part of its variance grows about 4x on a quarter of the images
    c = np.array([1, 1, 1, -1, -1, -1]) / 3

    def test_variance(n):
        return c @ delong_covariance(np.stack([m[:n] for m, _ in pairs] + [s[:n] for _, s in pairs]), labels[:n])[1] @ c

    assert 2.5 < test_variance(150) / test_variance(600) < 6


def test_one_class_only_is_refused():
    with pytest.raises(ValueError, match="two images of each class"):
        delong_covariance(np.random.default_rng(0).random((1, 10)), np.ones(10))


def test_scores_round_trip_in_float32():
    s = np.random.default_rng(4).random(624).astype(np.float32)
    text = encode_scores(s)
    assert text.startswith("624:") and np.array_equal(decode_scores(text), s.astype(np.float64))


def test_binary_runs_carry_scores_and_the_tables_an_auc_interval(tmp_path):
    from conftest import TINY_RUN

    from kdbench.cli import main

    assert main(["run", "--methods", "hinton", "--seeds", "0,1", "--dataset-opt", "synthetic.task=binary",
                 "--out", str(tmp_path), *TINY_RUN]) == 0
    rows = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    preds = [r for r in rows if r["kind"] == "predictive"]
    for r in preds:  # the stored scores reproduce the row's own AUC
        labels = decode_correct(r["test_labels"]).astype(int)
        assert roc_auc_score(labels, decode_scores(r["test_scores"])) == pytest.approx(r["auc"], abs=1e-6)
    table = json.loads((tmp_path / "leaderboard.json").read_text())["tables"]["predictive"]["rows"]
    hinton = next(r for r in table if r["method"] == "hinton")
    assert hinton["gain_auc_lo_mean"] < hinton["gain_auc_mean"] < hinton["gain_auc_hi_mean"]
    assert "ΔAUC 95% lo" in (tmp_path / "leaderboard.md").read_text()


def test_the_auc_interval_adds_the_between_seed_variance_of_the_gain():
    rng = np.random.default_rng(5)
    labels = (rng.random(400) < 0.5).astype(int)
    scratch = [labels * 1.0 + rng.normal(size=400) for _ in range(3)]
    strengths = (0.0, 1.0, 2.0)  # seed-to-seed the method helps very differently
    pairs = [(labels * (1.0 + a) + rng.normal(size=400), s) for a, s in zip(strengths, scratch)]
    gain, lo, hi = auc_gain_interval(pairs, labels)
    aucs, cov = delong_covariance(np.stack([m for m, _ in pairs] + scratch), labels)
    c = np.array([1, 1, 1, -1, -1, -1]) / 3
    per_seed = aucs[:3] - aucs[3:]
    test_var, seed_var = c @ cov @ c, np.var(per_seed, ddof=1) / 3
    dof = (test_var + seed_var) ** 2 / (seed_var ** 2 / 2)  # Welch-Satterthwaite, the seeds' 2 dof
    expected = student_t.ppf(0.975, dof) * np.sqrt(test_var + seed_var)
    assert (hi - lo) / 2 == pytest.approx(expected, rel=1e-5)
    assert (hi - lo) / 2 > 1.959964 * np.sqrt(c @ cov @ c) * 1.2  # the seeds widen it here
