"""`kdbench run` end to end on tiny settings (seconds each)."""

import json
import sys
import textwrap

import pytest
from conftest import TINY_RUN

from kdbench.cli import main
from kdbench.config.benchmark import Benchmark, apply
from kdbench.plugins import load_plugins
from kdbench.run.results import read_rows
from kdbench.run.runner import Runner

REQUIRED = ["dataset", "teacher", "student", "method", "seed", "fraction", "status", "error", "accuracy", "auc", "f1",
            "params", "flops", "latency_ms", "train_seconds", "config_hash"]


def rows_of(out):
    return [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    code = main(["run", "--methods", "hinton", "--out", str(out), *TINY_RUN])
    return code, out


def test_run_writes_flat_rows_for_teacher_baseline_and_method(first_run):
    code, out = first_run
    assert code == 0
    rows = rows_of(out)
    assert [r["method"] for r in rows] == ["teacher", "scratch", "hinton"]
    for r in rows:
        assert all(k in r for k in REQUIRED)
        assert r["status"] == "ok" and r["error"] is None
        assert 0 <= r["accuracy"] <= 1 and r["params"] > 0 and r["flops"] > 0 and r["latency_ms"] > 0
        assert all(not isinstance(v, (dict, list)) or k in ("method_options", "dataset_options", "recall_per_class", "auc_per_class")
                   for k, v in r.items())
    teacher, scratch, hinton = rows
    assert teacher["student"] == "tinycnn" and scratch["student"] == hinton["student"] == "smallcnn"
    assert teacher["params"] > scratch["params"] == hinton["params"]
    assert scratch["config_hash"] != hinton["config_hash"]


def test_leaderboard_markdown_lists_every_row_with_directions(first_run):
    _, out = first_run
    md = (out / "leaderboard.md").read_text()
    for name in ("teacher", "scratch", "hinton", "accuracy ↑", "latency_ms ↓", "torch"):
        assert name in md
    predictive = md.split("## Predictive metrics")[1].split("##")[0]
    lines = [line for line in predictive.splitlines() if line.startswith(("| tinycnn", "| smallcnn"))]
    assert len(lines) == 3 and "*dataset synthetic · teacher tinycnn" in predictive
    for name in ("leaderboard.tex", "leaderboard.html", "leaderboard.json", "leaderboard_predictive.csv",
                 "summary.json", "tradeoff_synthetic.png", "tradeoff_synthetic.svg"):
        assert (out / name).exists(), name


def test_same_seed_gives_the_same_metrics(first_run, tmp_path):
    _, out = first_run
    # a fresh cache: the teacher is retrained from scratch, so the whole pipeline is compared
    code = main(["run", "--methods", "hinton", "--out", str(tmp_path), "--cache-dir", str(tmp_path / "c"), *TINY_RUN])
    assert code == 0
    def scores(rows):
        return [(r["method"], r["accuracy"], r["auc"], r["f1"]) for r in rows]

    assert scores(rows_of(out)) == scores(rows_of(tmp_path)) and len(rows_of(out)) == 3  # teacher, scratch, hinton


def test_second_run_reuses_the_cached_teacher(tmp_path):
    bench = apply(Benchmark(), {"teachers": ["tinycnn"], "students": ["smallcnn"], "methods": ["hinton"],
                                "epochs": 1, "teacher_epochs": 2, "explainers": []})
    bench.dataset_options["synthetic"] = {"n_train": 96, "n_val": 48, "n_test": 48}
    plugins = load_plugins()
    first = Runner(bench, plugins, tmp_path / "a").run()
    second = Runner(bench, plugins, tmp_path / "b").run()
    assert first.teachers_trained == 1 and second.teachers_trained == 0
    t1, t2 = first.rows[0], second.rows[0]
    assert t1["teacher_cached"] is False and t2["teacher_cached"] is True
    assert t1["accuracy"] == t2["accuracy"]


def test_rerun_skips_finished_jobs_and_adds_no_rows(first_run, capsys):
    code, out = first_run
    before = rows_of(out)
    assert main(["run", "--methods", "hinton", "--out", str(out), *TINY_RUN]) == 0
    assert rows_of(out) == before


def test_unknown_method_is_one_line_exit_2_listing_the_choices(tmp_path, capsys):
    code = main(["run", "--methods", "medtex,hintn", "--out", str(tmp_path), *TINY_RUN])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown method 'hintn'; did you mean 'hinton'?" in err and "fitnets" in err
    assert "Traceback" not in err
    assert not (tmp_path / "runs.jsonl").exists()


@pytest.mark.parametrize("args,msg", [
    (["--method-opt", "hinton.T"], "--method-opt 'hinton.T' is malformed"),
    (["--method-opt", "hinton.tau=2"], "method hinton has no option 'tau'"),
    (["--seeds", "a,b"], "seeds must hold int values"),
    (["--fractions", "0"], "fraction 0.0 is outside (0, 1]"),
    (["--dataset-opt", "synthetic.colour=1"], "dataset synthetic has no option 'colour'"),
    (["--students", "resnet1"], "unknown model 'resnet1'"),
    (["--datasets", "medmnist:breastmnist", "--data-root", "/nonexistent"], "breastmnist.npz not found in /nonexistent"),
    (["--datasets", "folder:/nonexistent"], "folder dataset: /nonexistent is not a directory"),
    (["--teacher-checkpoint", "/nonexistent.pt"], "teacher checkpoint /nonexistent.pt does not exist"),
])
def test_bad_input_exits_2_with_one_clear_line(tmp_path, capsys, args, msg):
    code = main(["run", "--methods", "hinton", "--out", str(tmp_path), *TINY_RUN, *args])
    err = capsys.readouterr().err
    assert code == 2 and msg in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_failing_job_is_recorded_and_the_others_go_on(tmp_path, monkeypatch):
    (tmp_path / "kdb_bad_method.py").write_text(textwrap.dedent("""
        import kdbench
        from kdbench.distill.methods.hinton import Hinton

        class Exploding(Hinton):
            '''Raises on the first step.'''
            def forward(self, x, y):
                raise RuntimeError("boom")

        ROWS = []

        @kdbench.hookimpl
        def register_methods(register):
            register("exploding", Exploding)

        @kdbench.hookimpl
        def on_result(row):
            ROWS.append(row)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "out"
    code = main(["run", "--methods", "exploding,hinton", "--plugin", "kdb_bad_method", "--out", str(out), *TINY_RUN])
    assert code == 1
    rows = {r["method"]: r for r in rows_of(out)}
    assert rows["exploding"]["status"] == "failed" and "RuntimeError: boom" in rows["exploding"]["error"]
    assert rows["hinton"]["status"] == "ok" and rows["scratch"]["status"] == "ok"
    observed = sys.modules["kdb_bad_method"].ROWS
    assert [r["method"] for r in observed] == [r["method"] for r in rows_of(out)]


def test_half_written_last_line_is_ignored_and_reported(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text('{"method": "a", "status": "ok", "config_hash": "a"}\n{"method": "b", "sta')
    rows, warnings = read_rows(path)
    assert [r["method"] for r in rows] == ["a"] and "incomplete row" in warnings[0]


def test_force_rerun_supersedes_rows_instead_of_counting_them_as_seeds(first_run, tmp_path):
    from kdbench.report.leaderboard import build_tables

    _, out = first_run
    rows = rows_of(out)
    forced = rows + [dict(rows[-1], accuracy=0.0)]
    agg = build_tables(forced)[0][0].frame
    hinton = agg[agg["method"] == "hinton"].iloc[0]
    assert hinton["n"] == 1 and hinton["accuracy_mean"] == 0.0


def test_explainers_add_rows_a_leaderboard_section_and_the_figure(tmp_path):
    code = main(["run", "--methods", "hinton", "--out", str(tmp_path), *TINY_RUN,
                 "--explainers", "gradcam,random,medtex-mask", "--xai-samples", "12"])
    assert code == 0
    xai = [r for r in rows_of(tmp_path) if r["kind"] == "explanation"]
    assert {(r["method"], r["explainer"]) for r in xai} >= {("teacher", "gradcam"), ("hinton", "random")}
    na = [r for r in xai if r["explainer"] == "medtex-mask"]
    assert na and all(r["status"] == "not_applicable" and "medtex" in r["error"] for r in na)
    ok = [r for r in xai if r["status"] == "ok"]
    assert all(r["xai_samples"] == 12 and r["pointing_game"] is not None and r["explain_ms_per_image"] > 0 for r in ok)
    md = (tmp_path / "leaderboard.md").read_text()
    assert "## Explanation metrics" in md and "pointing_game ↑" in md and "pixel_flipping ↓" in md and "`random`" in md
    assert (tmp_path / "explanations_synthetic.png").stat().st_size > 1000


def test_a_row_appended_after_a_torn_line_starts_on_its_own_line(tmp_path):
    from kdbench.run.results import RunsWriter

    path = tmp_path / "runs.jsonl"
    path.write_text('{"method": "a", "status": "ok", "config_hash": "a"}\n{"method": "b", "sta')
    RunsWriter(path).append({"method": "c", "status": "ok", "config_hash": "c"})
    rows, warnings = read_rows(path)
    assert [r["method"] for r in rows] == ["a", "c"] and len(warnings) == 1


def test_a_resumed_run_redraws_the_complete_explanation_figure(tmp_path):
    from kdbench.testing import run_tiny_benchmark

    kw = dict(methods=["hinton"], explainers=["gradcam", "random"], cache_dir=tmp_path / "c")
    run_tiny_benchmark(tmp_path / "out", **kw)
    figure = tmp_path / "out" / "explanations_synthetic.png"
    first = figure.read_bytes()
    figure.unlink()
    run_tiny_benchmark(tmp_path / "out", **kw)  # every job is skipped; the figure comes from stored maps
    assert figure.read_bytes() == first


def test_latency_is_measured_with_torch_benchmark_and_carries_its_spread(monkeypatch):
    import torch
    import torch.utils.benchmark as tb

    from kdbench.builtins.models import TinyCNN
    from kdbench.evaluate.predictive import cpu_latency

    calls = []
    real = tb.Timer.blocked_autorange

    def spy(self, *args, **kwargs):
        calls.append(kwargs)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(tb.Timer, "blocked_autorange", spy)
    median, iqr = cpu_latency(TinyCNN(3, 3), torch.zeros(1, 3, 32, 32), min_run_time=0.05)
    assert calls and 0 < median < 10_000 and 0 <= iqr < 10_000
