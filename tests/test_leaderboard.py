"""Leaderboards from hand-made rows: aggregation, ranks, gains, conflicts, formats."""

import json
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from kdbench.report.leaderboard import build_tables, resolve_conflicts
from kdbench.report.publish import publish
from kdbench.report.render import to_html, to_latex, to_markdown


def row(method, seed, acc, *, student="s", fraction=1.0, flops=100, config=None, **extra):
    return {"kind": "predictive", "dataset": "d", "teacher": "t", "student": student if method != "teacher" else "t",
            "method": method, "seed": seed, "fraction": fraction, "explainer": None, "status": "ok", "error": None,
            "accuracy": acc, "auc": acc, "f1": acc, "params": 10, "flops": flops, "latency_ms": 1.0,
            "train_seconds": 1.0, "config_hash": config or f"{method}-{student}-{seed}-{fraction}",
            "method_options": {}, "kdbench_version": "0.1.0", "torch_version": "x", "timm_version": "y",
            "quantus_version": "z", "device": "cpu", "timestamp": "2026-11-21T00:00:00", **extra}


@pytest.fixture
def rows():
    out = [row("teacher", s, 0.99) for s in (0, 1, 2)]
    for s, (a, b, c) in enumerate([(0.60, 0.70, 0.65), (0.62, 0.74, 0.61), (0.64, 0.72, 0.63)]):
        out += [row("scratch", s, a), row("hinton", s, b), row("fitnets", s, c)]
    return out


def frame(rows, **kw):
    tables, _ = build_tables(rows, **kw)
    return {t.name: t for t in tables}


def test_mean_std_and_n_over_seeds(rows):
    f = frame(rows)["predictive"].frame.set_index("method")
    assert f.loc["hinton", "accuracy_mean"] == pytest.approx(0.72)
    assert f.loc["hinton", "accuracy_std"] == pytest.approx(np.std([0.70, 0.74, 0.72], ddof=1))
    assert f.loc["hinton", "n"] == 3 and f.loc["teacher", "n"] == 3


def test_gain_over_scratch_is_paired_by_seed(rows):
    f = frame(rows)["predictive"].frame.set_index("method")
    assert f.loc["hinton", "gain_accuracy_mean"] == pytest.approx(0.10)
    assert f.loc["fitnets", "gain_accuracy_mean"] == pytest.approx(np.mean([0.05, -0.01, -0.01]))
    assert np.isnan(f.loc["scratch", "gain_accuracy_mean"]) and np.isnan(f.loc["teacher", "gain_accuracy_mean"])
    # the spread is that of the per-seed differences (means alone cannot tell paired from unpaired)
    assert f.loc["hinton", "gain_accuracy_std"] == pytest.approx(0.02)
    assert f.loc["fitnets", "gain_accuracy_std"] == pytest.approx(np.std([0.05, -0.01, -0.01], ddof=1))
    # a seed without its scratch row has no gain: hinton's is over seeds 1 and 2 (0.12, 0.08), not 0.09 unpaired
    g = frame([r for r in rows if (r["method"], r["seed"]) != ("scratch", 0)])["predictive"].frame.set_index("method")
    assert g.loc["hinton", "gain_accuracy_mean"] == pytest.approx(0.10)


def test_ranks_follow_each_metric_direction():
    rs = [row("scratch", 0, 0.5, flops=10), row("hinton", 0, 0.9, flops=30), row("fitnets", 0, 0.7, flops=20)]
    f = frame(rs)["predictive"].frame.set_index("method")
    assert (f.loc["hinton", "accuracy_rank"], f.loc["fitnets", "accuracy_rank"], f.loc["scratch", "accuracy_rank"]) \
        == (1, 2, 3)
    assert f.loc["hinton", "avg_rank"] == 1
    model = rs[1]
    xr = [dict(model, kind="explanation", explainer=e, pixel_flipping=pf, pointing_game=pg, complexity=c)
          for e, pf, pg, c in (("gradcam", 5.0, 0.9, 9.0), ("saliency", 3.0, 0.5, 1.0), ("random", 9.0, 0.03, 0.5))]
    other = [dict(rs[0], kind="explanation", explainer=e, pixel_flipping=pf, pointing_game=pg)
             for e, pf, pg in (("gradcam", 99.0, 0.01), ("random", 98.0, 0.0))]  # a worse model: own ranks
    x = frame(xr + other)["explanations"].frame.set_index(["method", "explainer"])
    assert x.loc[("hinton", "saliency"), "pixel_flipping_rank"] == 1  # lower pixel flipping is better
    assert x.loc[("hinton", "gradcam"), "pointing_game_rank"] == 1  # higher pointing game is better
    assert x.loc[("scratch", "gradcam"), "pointing_game_rank"] == 1  # ranked within its own model
    assert "complexity_rank" not in x  # not ranked: it cannot tell trained from untrained maps
    assert x.loc[("hinton", "random"), "avg_rank"] == 3


def test_sort_by_metric_puts_the_best_first(rows):
    f = frame(rows, sort="accuracy")["predictive"].frame
    assert list(f["method"]) == ["teacher", "hinton", "fitnets", "scratch"]


def test_conflicting_configs_of_one_job_are_reported_not_mixed(rows):
    other = [dict(r, config_hash="other", accuracy=0.0) for r in rows if r["method"] == "hinton" and r["seed"] == 0]
    kept, warnings = resolve_conflicts(rows + other)
    assert len(warnings) == 1 and "stored under config hinton-s-0-1.0 and other" in warnings[0]
    hinton0 = [r for r in kept if r["method"] == "hinton" and r["seed"] == 0]
    assert len(hinton0) == 1 and hinton0[0]["config_hash"] == "other"


def test_less_data_table_has_one_column_per_fraction(rows):
    more = [row(m, s, 0.5, fraction=0.1) for m in ("scratch", "hinton") for s in (0, 1, 2)]
    t = frame(rows + more)["fractions"]
    assert t.metrics == ["accuracy@0.1", "accuracy@1"]
    hinton = t.frame.set_index("method").loc["hinton"]
    assert hinton["accuracy@0.1_mean"] == pytest.approx(0.5) and hinton["accuracy@1_mean"] == pytest.approx(0.72)


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.cells, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        if data.strip():
            self.cells.append(data.strip())


def test_every_format_contains_every_row_and_parses(rows, tmp_path):
    published = publish(rows, tmp_path, plots=False)
    tables = published.tables
    methods = ["teacher", "scratch", "hinton", "fitnets"]
    md = to_markdown(tables)
    assert all(f"| {m} " in md for m in methods) and "**0.720 ± 0.020**" in md
    tex = to_latex(tables)
    assert tex.count(r"\toprule") == tex.count(r"\bottomrule") >= len(tables)  # wide tables come in parts
    assert tex.count("{") == tex.count("}") and r"\textbf{0.720 $\pm$ 0.020}" in tex
    assert all(re.search(rf"^{m} &", tex, re.MULTILINE) for m in methods)  # dataset and teacher are in the caption
    parser = _Cells()
    parser.feed(to_html(tables))
    assert all(m in parser.cells for m in methods) and "strong" in parser.tags
    back = pd.read_csv(tmp_path / "leaderboard_predictive.csv")
    pd.testing.assert_frame_equal(back, tables[0].frame, check_dtype=False)
    doc = json.loads((tmp_path / "leaderboard.json").read_text())
    assert [r["method"] for r in doc["tables"]["predictive"]["rows"]] == ["teacher", "scratch", "fitnets", "hinton"]
    assert doc["tables"]["predictive"]["directions"]["flops"] == "lower"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {(m["method"], m["n"]) for m in summary["models"]} == {(m, 3) for m in methods}


def test_footnote_states_directions_versions_and_non_default_options(rows):
    rows = rows + [row("at", 0, 0.6, method_options={"beta": 500})]
    note = frame(rows)["predictive"].footnote
    assert "accuracy ↑" in note and "flops ↓" in note and "torch x" in note and "quantus z" in note
    assert "at: beta=500" in note and "2026-11-21" in note


def test_summary_and_explanation_footnote_name_every_version_and_image_count(rows, tmp_path):
    later = [dict(row(m, 3, 0.7), timestamp="2026-11-23T01:02:03", torch_version="y") for m in ("scratch", "hinton")]
    explained = [dict(r, kind="explanation", explainer="gradcam", pixel_flipping=1.0, xai_samples=n, quantus_version=q)
                 for r, n, q in ((rows[3], 128, "z"), (later[0], 32, "z2"))]
    published = publish(rows + later + explained, tmp_path, plots=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["versions"]["torch_version"] == "x and y" and summary["versions"]["timm_version"] == "y"
    note = {t.name: t for t in published.tables}["explanations"].footnote
    assert "subset of 32 and 128 test images" in note and "Quantus z and z2 metrics" in note


def test_explanation_footnote_says_how_many_pixel_flipping_steps_its_rows_took(rows):
    from kdbench.report.leaderboard import xai_footnote

    new = [dict(r, kind="explanation", explainer="gradcam", status="ok", pixel_flipping=9.0,
                xai_curve_steps={"pixel_flipping": 16}) for r in rows[:2]]
    old = [dict(r, kind="explanation", explainer="gradcam", status="ok", pixel_flipping=27.0) for r in rows[2:4]]
    assert "Perturbation steps per image: pixel_flipping 16." in xai_footnote(new)
    both = xai_footnote(new + old)
    assert ("pixel_flipping 16; not recorded in 2 rows scored before 2026-12-06, whose steps were H*W/16 of the "
            "C*H*W values (16C steps)." in both)
    no_flipping = [dict(r, kind="explanation", explainer="gradcam", status="ok", pointing_game=0.5) for r in rows[:2]]
    assert "Perturbation steps" not in xai_footnote(no_flipping)


def test_ranks_compare_models_trained_on_the_same_fraction(rows):
    more = [row(m, s, a, fraction=0.1) for m, a in (("scratch", 0.5), ("hinton", 0.4)) for s in (0, 1, 2)]
    tables = frame(rows + more)
    f = tables["predictive"].frame.set_index(["method", "fraction"])
    assert f.loc[("scratch", 0.1), "accuracy_rank"] == 1 and f.loc[("hinton", 1.0), "accuracy_rank"] == 1
    fr = tables["fractions"].frame.set_index("method")
    assert fr.loc["hinton", "accuracy@1_rank"] == 1 and fr.loc["scratch", "accuracy@0.1_rank"] == 1


def test_publishing_the_same_rows_twice_writes_identical_files(rows, tmp_path):
    """Re-running a finished benchmark must leave the committed results untouched."""
    first, second = tmp_path / "a", tmp_path / "b"
    names = sorted(p.name for p in publish(rows, first, benchmark="demo").paths)
    publish(rows, second, benchmark="demo")
    assert any(n.endswith(".svg") for n in names) and any(n.endswith(".png") for n in names)
    assert [n for n in names if (first / n).read_bytes() != (second / n).read_bytes()] == []


def test_one_seed_with_several_fractions_gives_a_less_data_table():
    """One seed: every std is NaN; the table must still have both fractions (it crashed in pivot_table)."""
    rs = [row("teacher", 0, 0.99)] + [row(m, 0, a, fraction=f) for m, a in (("scratch", 0.6), ("hinton", 0.7))
                                      for f in (0.5, 1.0)]
    t = frame(rs)["fractions"]
    assert t.metrics == ["accuracy@0.5", "accuracy@1"]
    f = t.frame.set_index("method")
    assert f.loc["hinton", "accuracy@0.5_mean"] == 0.7 and np.isnan(f.loc["hinton", "accuracy@0.5_std"])


def test_footnote_dates_a_resumed_run_by_its_range_and_names_every_version(rows):
    later = [dict(row(m, 3, 0.7), timestamp="2026-11-23T01:02:03", torch_version="y") for m in ("scratch", "hinton")]
    note = frame(rows + later)["predictive"].footnote
    assert "2026-11-21 to 2026-11-23" in note and "torch x and y" in note
    failed = dict(row("fitnets", 4, 0.1), status="failed", timestamp="2026-12-31T00:00:00", torch_version="w")
    assert "2026-12-31" not in frame(rows + [failed])["predictive"].footnote  # a failed row produced no number
