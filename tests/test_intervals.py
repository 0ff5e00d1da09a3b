"""Paired bootstrap intervals of the accuracy gain over scratch, from the rows alone."""

from __future__ import annotations

import json

import numpy as np

from kdbench.evaluate.fidelity import decode_correct, decode_scores, encode_correct
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
    assert hinton["gain_accuracy_lo_mean"] <= hinton["gain_accuracy_mean"] <= hinton["gain_accuracy_hi_mean"]
    # the synthetic set has three classes: its macro-AUC gain gets DeLong's interval in influence form
    assert all(len(decode_scores(r["test_auc_influence"])) == 48 for r in rows if r["kind"] == "predictive")
    assert hinton["gain_auc_lo_mean"] < hinton["gain_auc_mean"] < hinton["gain_auc_hi_mean"]
    assert next(r for r in table if r["method"] == "scratch")["gain_accuracy_lo_mean"] is None
    assert "ΔAcc. 95% lo" in (tmp_path / "leaderboard.md").read_text()
