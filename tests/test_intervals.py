"""Intervals of the accuracy gain over scratch (paired bootstrap over images, plus the seeds), from the rows alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import norm
from scipy.stats import t as student_t

from kdbench.evaluate.fidelity import decode_correct, decode_scores, encode_correct
from kdbench.report.gain_interval import gain_interval
from kdbench.report.intervals import paired_gain_interval


def test_correctness_round_trips_through_its_text_form():
    bits = np.random.default_rng(0).random(3421) > 0.3
    text = encode_correct(bits)
    assert text.startswith("3421:") and len(text) < 600
    assert np.array_equal(decode_correct(text), bits)


def test_interval_of_identical_models_is_zero_and_of_a_sure_gain_is_one():
    right, wrong = np.ones(50, bool), np.zeros(50, bool)
    assert paired_gain_interval([(right, right), (wrong, wrong)]) == (0.0, 0.0)
    assert paired_gain_interval([(right, wrong)] * 3) == (1.0, 1.0)


def test_interval_brackets_the_observed_gain_and_narrows_with_more_images():
    rng = np.random.default_rng(1)

    def pair(n):  # the method also gets a random 10% of images right (fixing ~3 points of scratch's errors)
        s = rng.random(n) < 0.7
        m = s | (rng.random(n) < 0.1)
        return m, s

    small = [pair(100) for _ in range(3)]
    large = [pair(2000) for _ in range(3)]
    observed = np.mean([m.mean() - s.mean() for m, s in large])
    lo, hi = paired_gain_interval(large)
    assert lo <= observed <= hi and lo > 0  # a real gain: the interval excludes 0
    slo, shi = paired_gain_interval(small)
    assert shi - slo > hi - lo


def test_tables_show_the_interval_for_every_distilled_student(tmp_path):
    from conftest import TINY_RUN

    from kdbench.cli import main

    assert main(["run", "--methods", "hinton", "--seeds", "0,1", "--out", str(tmp_path), *TINY_RUN]) == 0
    rows = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert all(len(decode_correct(r["test_correct"])) == 48 for r in rows)
    table = json.loads((tmp_path / "leaderboard.json").read_text())["tables"]["predictive"]["rows"]
    hinton = next(r for r in table if r["method"] == "hinton")
    assert hinton["gain_accuracy_lo_mean"] < hinton["gain_accuracy_mean"] < hinton["gain_accuracy_hi_mean"]
    # the synthetic set has three classes: its macro-AUC gain gets DeLong's interval in influence form
    assert all(len(decode_scores(r["test_auc_influence"])) == 48 for r in rows if r["kind"] == "predictive")
    assert hinton["gain_auc_lo_mean"] < hinton["gain_auc_mean"] < hinton["gain_auc_hi_mean"]
    assert next(r for r in table if r["method"] == "scratch")["gain_accuracy_lo_mean"] is None
    assert "ΔAcc. 95% lo" in (tmp_path / "leaderboard.md").read_text()


def test_seeds_share_the_test_images_so_repeating_a_seed_adds_no_certainty():
    """Seeds and images are crossed: three seeds that got exactly the same images right give the
    one-seed interval. Resampling the images afresh for each seed would shrink it by about sqrt(3)."""
    rng = np.random.default_rng(2)
    s = rng.random(300) < 0.7
    m = s ^ (rng.random(300) < 0.15)
    lo1, hi1 = paired_gain_interval([(m, s)])
    lo3, hi3 = paired_gain_interval([(m, s)] * 3)
    assert hi3 - lo3 == pytest.approx(hi1 - lo1, rel=1e-9)
    gain = m.mean() - s.mean()
    sd = np.sqrt(np.var(m.astype(float) - s, ddof=0) / 300)  # the closed form the bootstrap estimates
    assert (hi1 - lo1) / 2 == pytest.approx(norm.ppf(0.975) * sd, rel=0.08)
    assert lo1 < gain < hi1


def welch_half_width(v: float, b: float) -> float:
    """95% half-width for test-sample variance ``v`` (infinite dof) plus between-seed variance ``b`` of 3 seeds
    (2 dof), written out from Welch-Satterthwaite independently of report/gain_interval.py."""
    return student_t.ppf(0.975, (v + b) ** 2 / (b ** 2 / 2)) * np.sqrt(v + b)

def test_few_seeds_get_students_t_with_welch_satterthwaite_dof():
    # the seeds alone (no test-sample variance): t with S - 1 = 2 dof, 4.30 instead of 1.96
    gain, lo, hi = gain_interval(0.02, 0.0, np.array([0.0, 0.02, 0.04]))
    assert (hi - lo) / 2 == pytest.approx(student_t.ppf(0.975, 2) * np.sqrt(0.0004 / 3), rel=1e-9)
    # the images dominate: the degrees of freedom grow and the quantile nears the normal one
    gain, lo, hi = gain_interval(0.02, 1.0, np.array([0.0, 0.02, 0.04]))
    assert (hi - lo) / 2 == pytest.approx(norm.ppf(0.975) * np.sqrt(1.0 + 0.0004 / 3), rel=1e-3)
    # in between, exactly the Welch-Satterthwaite dof
    v, b = 0.0002, 0.0004 / 3
    gain, lo, hi = gain_interval(0.02, v, np.array([0.0, 0.02, 0.04]))
    assert (hi - lo) / 2 == pytest.approx(welch_half_width(v, b))


def test_three_seed_intervals_cover_a_true_zero_gain_at_their_level():
    """Seed-to-seed variation dominates (the method helps in one seed, hurts in another) and the
    true mean gain is 0: the 95% interval must cover 0 in about 95% of experiments (here 94%).
    The same variances with a normal quantile cover it in 88% of these experiments."""
    rng = np.random.default_rng(7)
    n, covered, trials = 200, 0, 300
    for _ in range(trials):
        s = rng.random(n) < 0.5  # scratch at 50%, so fixing and breaking images are equally likely
        pairs = []
        for shift in rng.normal(0.0, 0.05, 3):  # each seed's effect: symmetric around 0
            flip = rng.random(n) < abs(shift)  # these images become right (shift > 0) or wrong
            m = np.where(flip, shift > 0, s)
            pairs.append((m.astype(bool), s))
        lo, hi = paired_gain_interval(pairs, resamples=400)
        covered += lo <= 0 <= hi
    assert covered / trials >= 0.92


def test_vs_random_interval_is_of_the_seed_mean_not_the_mean_of_the_seeds_bounds():
    import pandas as pd

    from kdbench.report.intervals import add_vs_random_intervals

    group = ["model", "explainer"]
    m = "faithfulness_correlation_vs_random"
    z = norm.ppf(0.975)

    def frame(values, half):
        return pd.DataFrame({"model": "a", "explainer": "gradcam", m: values,
                             f"{m}_lo": [v - half for v in values], f"{m}_hi": [v + half for v in values]})

    agg = pd.DataFrame({"model": ["a"], "explainer": ["gradcam"], f"{m}_lo_mean": [0.0], f"{m}_hi_mean": [0.0]})
    # three seeds that agree: the one seed's image interval, whatever the number of seeds
    same = add_vs_random_intervals(agg, frame([0.10, 0.10, 0.10], 0.05), [m], group).iloc[0]
    assert (same[f"{m}_lo_mean"], same[f"{m}_hi_mean"]) == pytest.approx((0.05, 0.15))
    # seeds that disagree: their spread widens it, with t at 2 dof when it dominates
    values = np.array([0.02, 0.10, 0.18])
    varied = add_vs_random_intervals(agg, frame(list(values), 0.001), [m], group).iloc[0]
    v, b = (0.001 / z) ** 2, np.var(values, ddof=1) / 3
    half = welch_half_width(v, b)
    assert (varied[f"{m}_lo_mean"], varied[f"{m}_hi_mean"]) == pytest.approx((0.10 - half, 0.10 + half))
    assert varied[f"{m}_lo_mean"] < 0  # while every seed's own interval excludes 0


def test_vs_random_table_carries_the_interval_of_the_seed_mean_and_no_statistics_of_the_seeds_bounds():
    from kdbench.report.leaderboard import vs_random_table

    m = "faithfulness_correlation_vs_random"
    ids = {"dataset": "d", "teacher": "t", "student": "s", "method": "hinton", "fraction": 1.0}
    values = np.array([0.05, 0.10, 0.15])
    rows = [{**ids, "kind": "explanation", "status": "ok", "seed": seed, "explainer": "gradcam",
             m: v, f"{m}_lo": v - 0.02, f"{m}_hi": v + 0.02} for seed, v in enumerate(values)]
    row = vs_random_table(rows).frame.iloc[0]
    assert not [c for c in row.index if c.endswith(("_lo_std", "_hi_std"))]
    v, b = (0.02 / norm.ppf(0.975)) ** 2, np.var(values, ddof=1) / 3
    half = welch_half_width(v, b)
    assert (row[f"{m}_mean"], row[f"{m}_lo_mean"], row[f"{m}_hi_mean"]) == pytest.approx((0.10, 0.10 - half, 0.10 + half))
    assert row[f"{m}_lo_mean"] < 0.10 - 0.02  # wider than the mean of the seeds' own bounds
