"""Promises a run keeps about its own state: no stale teacher, no disk fault blamed on a job,
no retraining a teacher that failed, no writing through links, no diverged model reported ok."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_RUN

from kdbench.cli import main


def rows_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines() if line.strip()]


def _write_medmnist(root: Path, labels_flip: bool = False) -> None:
    """A tiny two-class MedMNIST-format file: bright images are class 1."""
    rng = np.random.default_rng(0)
    arrays = {}
    for part, n in (("train", 60), ("val", 20), ("test", 20)):
        y = np.arange(n) % 2
        x = (rng.uniform(0, 100, (n, 28, 28)) + 120 * y[:, None, None]).astype(np.uint8)
        arrays[f"{part}_images"] = x
        arrays[f"{part}_labels"] = (1 - y if labels_flip else y).reshape(-1, 1)
    np.savez(root / "breastmnist.npz", **arrays)


MEDMNIST_RUN = ["--datasets", "medmnist:breastmnist", "--teachers", "tinycnn", "--students", "tinycnn",
                "--methods", "hinton", "--no-baseline", "--epochs", "1", "--teacher-epochs", "1", "--seeds", "0",
                "--quiet", "--explainers", ""]


def test_a_cached_teacher_is_not_reused_after_the_data_changed_in_the_same_file(tmp_path):
    data, cache = tmp_path / "data", tmp_path / "cache"
    data.mkdir()
    _write_medmnist(data)
    common = [*MEDMNIST_RUN, "--data-root", str(data), "--cache-dir", str(cache)]
    assert main(["run", *common, "--out", str(tmp_path / "a")]) == 0
    again = tmp_path / "b"
    assert main(["run", *common, "--out", str(again)]) == 0
    first = {r["method"]: r for r in rows_of(tmp_path / "a")}
    same = {r["method"]: r for r in rows_of(again)}
    assert same["teacher"]["teacher_cached"] is True  # unchanged data: the cache is used
    assert same["teacher"]["config_hash"] == first["teacher"]["config_hash"]

    _write_medmnist(data, labels_flip=True)  # same file name, labels changed inside it
    changed = tmp_path / "c"
    assert main(["run", *common, "--out", str(changed)]) == 0
    new = {r["method"]: r for r in rows_of(changed)}
    assert new["teacher"]["teacher_cached"] is False
    assert new["teacher"]["config_hash"] != first["teacher"]["config_hash"]
    assert new["hinton"]["config_hash"] != first["hinton"]["config_hash"]


def test_the_data_fingerprint_changes_with_one_label_and_not_with_a_reload(tiny_data):
    from kdbench.builtins.datasets import synthetic
    from kdbench.data.contract import DatasetBundle

    again = synthetic(n_train=64, n_val=32, n_test=32)
    assert again.fingerprint == tiny_data.fingerprint
    y = tiny_data.train.y.clone()
    y[0] = (y[0] + 1) % tiny_data.info.num_classes
    from kdbench.data.contract import Split

    relabelled = DatasetBundle(tiny_data.info, Split(tiny_data.train.x, y), tiny_data.val, tiny_data.test)
    assert relabelled.fingerprint != tiny_data.fingerprint


def test_a_full_disk_in_a_training_log_stops_the_run_and_is_not_a_failed_job(tmp_path, monkeypatch, capsys):
    from kdbench.run import results

    real = results.TrainingLog.write
    student_logs = {"n": 0}

    def write(self, record):
        if not self.path.name.startswith("teacher-"):
            student_logs["n"] += 1
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        return real(self, record)

    monkeypatch.setattr(results.TrainingLog, "write", write)
    out = tmp_path / "out"
    code = main(["run", "--methods", "hinton", "--out", str(out), *TINY_RUN])
    err = capsys.readouterr().err
    assert code == 2 and student_logs["n"] == 1
    assert "No space left on device" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert all(r["status"] == "ok" for r in rows_of(out))  # the teacher's rows, nothing failed
    assert {r["method"] for r in rows_of(out)} == {"teacher"}
    monkeypatch.setattr(results.TrainingLog, "write", real)  # space freed: the same command finishes the run
    assert main(["run", "--methods", "hinton", "--out", str(out), *TINY_RUN]) == 0
    assert {r["method"] for r in rows_of(out) if r["status"] == "ok"} == {"teacher", "scratch", "hinton"}


def test_a_full_disk_while_publishing_is_one_line_and_keeps_the_rows(tmp_path, monkeypatch, capsys):
    from kdbench.report import render

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(render, "write_tables", full)
    monkeypatch.setattr("kdbench.report.publish.write_tables", full)
    out = tmp_path / "out"
    code = main(["run", "--methods", "hinton", "--out", str(out), *TINY_RUN])
    err = capsys.readouterr().err
    assert code == 2 and "No space left on device" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert {r["method"] for r in rows_of(out)} == {"teacher", "scratch", "hinton"}


def test_a_teacher_that_fails_is_trained_once_and_its_jobs_name_its_error(tmp_path, monkeypatch):
    from kdbench.run.steps import JobSteps

    calls = {"n": 0}

    def broken_teacher(self, job, bundle, done):
        calls["n"] += 1
        raise RuntimeError("teacher exploded")

    monkeypatch.setattr(JobSteps, "teacher", broken_teacher)
    out = tmp_path / "out"
    assert main(["run", "--methods", "hinton,fitnets", "--seeds", "0,1", "--out", str(out), *TINY_RUN]) == 1
    rows = rows_of(out)
    assert calls["n"] == 2  # once per (dataset, teacher, seed), not once per job
    assert len(rows) == 6 and all(r["status"] == "failed" for r in rows)
    assert all("teacher exploded" in r["error"] for r in rows)
    # every row, the first student's too, says the teacher failed: no student looks as if it failed itself
    assert all(r["error"].startswith("TeacherFailedError: teacher tinycnn on synthetic seed=") for r in rows), \
        [r["error"] for r in rows]


def test_a_symlink_planted_in_the_output_folder_is_refused_and_its_target_untouched(tmp_path, capsys):
    out = tmp_path / "out"
    (out / "logs").mkdir(parents=True)
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    (out / "runs.jsonl").symlink_to(victim)
    code = main(["run", "--methods", "hinton", "--out", str(out), *TINY_RUN])
    err = capsys.readouterr().err
    assert code == 2 and "is a symbolic link" in err and "Traceback" not in err
    assert victim.read_text() == "keep me"
    (out / "runs.jsonl").unlink()
    assert main(["run", "--methods", "hinton", "--out", str(out), *TINY_RUN]) == 0
    (out / "leaderboard.md").unlink()
    (out / "leaderboard.md").symlink_to(victim)  # publishing again must not write through it either
    capsys.readouterr()
    assert main(["leaderboard", str(out)]) == 2
    assert "leaderboard.md is a symbolic link" in capsys.readouterr().err
    assert victim.read_text() == "keep me"


def test_an_output_folder_that_is_itself_a_link_is_the_users_choice(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    assert main(["run", "--methods", "hinton", "--out", str(tmp_path / "link"), *TINY_RUN]) == 0
    assert (real / "runs.jsonl").is_file()


def test_training_that_diverges_without_nan_is_a_failed_row(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", "--methods", "hinton", "--lr", "1e6", "--out", str(out), *TINY_RUN])
    rows = rows_of(out)
    students = [r for r in rows if r["method"] in ("scratch", "hinton")]
    assert code == 1 and students and all(r["status"] == "failed" for r in students)
    assert all(("DivergedError" in r["error"] or "NonFiniteLossError" in r["error"]) for r in students)
    assert any("DivergedError" in r["error"] for r in students)


def test_divergence_check_leaves_normal_training_alone(tiny_data, tiny_pair):
    from kdbench.distill.methods.hinton import Hinton
    from kdbench.distill.training import TrainConfig, fit, freeze

    student, teacher = tiny_pair
    result = fit(Hinton(student, freeze(teacher), tiny_data.info), tiny_data.train, tiny_data.val,
                 TrainConfig(epochs=2, lr=2e-3))
    assert result.best_epoch >= 1


@pytest.mark.parametrize("first,factor,raises", [(2.0, 999.0, False), (2.0, 1001.0, True),
                                                 (5.0, 999.0, False),  # an absolute limit (2000) would stop this
                                                 (0.1, 9000.0, False), (0.1, 10010.0, True)])  # floor: 1000 x 1
def test_divergence_threshold_is_relative_to_the_first_step(tiny_data, first, factor, raises):
    """A scripted loss: ``first``, then ``factor`` x ``first``; divergence beyond 1000 x max(first, 1)."""
    import torch

    from kdbench.distill.methods.scratch import Scratch
    from kdbench.distill.training import DivergedError, TrainConfig, fit

    class Scripted(Scratch):
        def forward(self, x, y):
            out = super().forward(x, y)
            target = first if self.step == 0 else first * factor
            self.step += 1
            out["loss"] = out["loss"] * 0 + target + (out["loss"] - out["loss"].detach())
            out["task"] = out["loss"]
            return out

    from kdbench.builtins.models import TinyCNN

    torch.manual_seed(0)
    method = Scripted(TinyCNN(3, 3, widths=(8, 16)), None, tiny_data.info)
    method.step = 0
    cfg = TrainConfig(epochs=1, batch_size=32)
    if raises:
        with pytest.raises(DivergedError, match="over 1000x"):
            fit(method, tiny_data.train, tiny_data.val, cfg)
    else:
        fit(method, tiny_data.train, tiny_data.val, cfg)
