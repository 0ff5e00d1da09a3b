"""Every setting on record: rows, footnotes, summary.json, and OUT/benchmark.toml that re-plans the same jobs."""

from __future__ import annotations

import json

import tomllib
from conftest import TINY_RUN

from kdbench.cli import main


def _rows(out):
    return [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]


def test_settings_are_in_every_row_the_footnote_and_the_summary(tmp_path):
    out = tmp_path / "out"
    assert main(["run", "--methods", "hinton", "--lr", "0.003", "--batch-size", "32", "--out", str(out),
                 *TINY_RUN]) == 0
    rows = _rows(out)
    assert rows and all(r["lr"] == 0.003 and r["batch_size"] == 32 and r["teacher_epochs"] == 2 for r in rows)
    assert all(r["dataset_options"] == {"n_train": 96, "n_val": 48, "n_test": 48} for r in rows)
    assert {r["epochs"] for r in rows if r["method"] != "teacher"} == {1}
    md = (out / "leaderboard.md").read_text()
    assert "All methods at their defaults" in md  # no method options given
    for text in ("epochs=1", "teacher_epochs=2", "batch_size=32", "lr=0.003", "synthetic: n_test=48, n_train=96"):
        assert text in md, text
    summary = json.loads((out / "summary.json").read_text())
    assert "lr=0.003" in summary["non_default_settings"]
    hinton = next(m for m in summary["models"] if m["method"] == "hinton")
    assert hinton["config"]["lr"] == 0.003 and hinton["config"]["dataset_options"]["n_train"] == 96


def test_the_saved_benchmark_toml_plans_the_same_jobs_and_resumes_the_run(tmp_path, capsys):
    from kdbench.config.benchmark import load_toml
    from kdbench.config.record import benchmark_document

    out = tmp_path / "out"
    args = ["run", "--methods", "hinton", "--method-opt", "hinton.T=2", "--seeds", "0", "--out", str(out),
            *TINY_RUN]
    assert main(args) == 0
    first = _rows(out)
    saved = out / "benchmark.toml"
    back = load_toml(saved)
    assert back.method_options == {"hinton": {"T": 2}} and back.epochs == 1 and back.teacher_epochs == 2
    assert tomllib.loads(saved.read_text()) == benchmark_document(back)  # a fixed point: what is read is what was written
    capsys.readouterr()
    assert main(["run", "--config", str(saved), "--out", str(out), "--quiet"]) == 0
    assert _rows(out) == first  # every job found done: same config hashes, nothing re-run


def test_teacher_augment_changes_only_the_teacher_and_is_recorded(tmp_path, monkeypatch):
    import kdbench.run.steps as steps
    from kdbench.config.benchmark import Benchmark
    from kdbench.config.plan import teacher_settings

    plain, augmented = Benchmark(), Benchmark(teacher_augment=True)
    assert teacher_settings(augmented, "synthetic", "resnet18", 0)["augment"] is True
    assert teacher_settings(plain, "synthetic", "resnet18", 0)["augment"] is False

    seen = []
    real_fit = steps.fit

    def spy(method, train, val, cfg, *args, **kwargs):
        seen.append((type(method).__name__, cfg.augment, kwargs.get("teacher_cache") is not None))
        return real_fit(method, train, val, cfg, *args, **kwargs)

    monkeypatch.setattr(steps, "fit", spy)
    from conftest import TINY_RUN

    from kdbench.cli import main

    assert main(["run", "--methods", "hinton", "--teacher-augment", "--out", str(tmp_path), *TINY_RUN]) == 0
    teacher, *students = seen
    assert teacher[1] is True  # the teacher trained on augmented batches
    assert students and all(augment is False and cached for _, augment, cached in students)
    rows = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert all(r["teacher_augment"] is True for r in rows)


def test_teacher_selection_reaches_the_teachers_training_only_and_is_recorded(tmp_path, monkeypatch):
    """``--teacher-selection loss`` keeps the teacher's lowest-validation-loss epoch; the students keep
    selecting on accuracy; every row and the footnote say which rule the teacher used."""
    import kdbench.run.steps as steps

    seen = []
    real_fit = steps.fit

    def spy(method, train, val, cfg, *args, **kwargs):
        result = real_fit(method, train, val, cfg, *args, **kwargs)
        seen.append((type(method).__name__, cfg.selection, result))
        return result

    monkeypatch.setattr(steps, "fit", spy)
    from conftest import TINY_RUN

    from kdbench.cli import main

    assert main(["run", "--methods", "hinton", "--teacher-selection", "loss", "--out", str(tmp_path), *TINY_RUN]) == 0
    (name, rule, result), *students = seen
    assert (name, rule) == ("Scratch", "loss")
    assert all(r["val"] < 0 for r in result.history)  # minus the validation cross-entropy
    assert result.best_val == max(r["val"] for r in result.history)
    assert students and all(rule == "accuracy" for _, rule, _ in students)
    rows = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert all(r["teacher_selection"] == "loss" for r in rows)
    assert "teacher_selection=loss" in (tmp_path / "leaderboard.md").read_text()
