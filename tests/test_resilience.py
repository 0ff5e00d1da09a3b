"""Runs that survive: kill and resume, interrupts, locks, disk full, and every bad input."""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY_RUN
from PIL import Image

from kdbench.builtins.models import TinyCNN
from kdbench.cli import main
from kdbench.run.lock import LOCK_NAME

#: Slow enough (a few seconds per job) that a kill lands mid-run.
SLOW_RUN = ["run", "--teachers", "tinycnn", "--students", "smallcnn", "--methods", "hinton,fitnets,at",
            "--epochs", "2", "--teacher-epochs", "2", "--dataset-opt", "synthetic.n_train=1500",
            "--dataset-opt", "synthetic.n_val=100", "--dataset-opt", "synthetic.n_test=100", "--quiet",
            "--explainers", ""]


def rows_of(out):
    path = out / "runs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def start(args, cache):
    env = dict(os.environ, KDBENCH_CACHE=str(cache), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "kdbench.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_rows(out, n, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(rows_of(out)) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"run ended before {n} rows: {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError("timed out waiting for rows")


@pytest.mark.long
def test_sigkill_then_rerun_resumes_without_repeating_or_duplicating(tmp_path):
    cache, out, ref = tmp_path / "cache", tmp_path / "out", tmp_path / "ref"
    proc = start([*SLOW_RUN, "--out", str(out)], cache)
    wait_for_rows(out, 2, proc)  # the teacher's row and the first job's
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = rows_of(out)
    assert 2 <= len(before) < 5, "the kill must land mid-run"
    finished = [r for r in before if r["method"] != "teacher"][0]
    log = out / "logs" / f"{finished['config_hash']}.jsonl"
    log_before = log.read_text()
    assert len(log_before.splitlines()) == 2  # two epochs

    done = start([*SLOW_RUN, "--out", str(out)], cache)
    assert done.wait() == 0, done.stderr.read()
    after = rows_of(out)
    assert log.read_text() == log_before  # the finished job did not train again
    keys = [(r["config_hash"], r["kind"], r["explainer"]) for r in after]
    assert len(keys) == len(set(keys)) == 5  # teacher, scratch, hinton, fitnets, at; nothing twice
    assert after[:len(before)] == before

    clean = start([*SLOW_RUN, "--out", str(ref)], cache)
    assert clean.wait() == 0
    metrics = ["dataset", "student", "method", "fraction", "n", "accuracy_mean", "auc_mean", "f1_mean", "flops_mean"]
    resumed = pd.read_csv(out / "leaderboard_predictive.csv")[metrics]
    uninterrupted = pd.read_csv(ref / "leaderboard_predictive.csv")[metrics]
    pd.testing.assert_frame_equal(resumed, uninterrupted)


@pytest.mark.long
def test_ctrl_c_stops_with_130_keeps_rows_and_prints_no_traceback(tmp_path):
    out = tmp_path / "out"
    proc = start([*SLOW_RUN, "--out", str(out)], tmp_path / "cache")
    wait_for_rows(out, 2, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted; finished results are kept" in err and "Traceback" not in err
    assert len(rows_of(out)) >= 2 and not (out / LOCK_NAME).exists()


def test_a_live_lock_refuses_a_second_writer_and_a_stale_one_is_replaced(tmp_path, capsys):
    from kdbench.run.lock import RunLock

    out = tmp_path / "out"
    out.mkdir()
    with RunLock(out):  # a live writer holds the OS lock (the file's pid alone proves nothing)
        assert main(["run", "--methods", "hinton", "--out", str(out), *TINY_RUN]) == 2
    assert f"another kdbench run (pid {os.getpid()}) is writing to {out}" in capsys.readouterr().err
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename}))
    assert main(["run", "--methods", "hinton", "--out", str(out), *TINY_RUN]) == 0
    assert not (out / LOCK_NAME).exists() and len(rows_of(out)) == 3


def test_disk_full_is_one_line_and_keeps_the_rows_already_written(tmp_path, monkeypatch, capsys):
    from kdbench.run import results

    real = results.RunsWriter.append_many
    calls = {"n": 0}

    def append_many(self, rows):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, rows)

    monkeypatch.setattr(results.RunsWriter, "append_many", append_many)
    code = main(["run", "--methods", "hinton", "--out", str(tmp_path), *TINY_RUN])
    err = capsys.readouterr().err
    assert code == 2 and "No space left on device; the rows written before are kept" in err
    assert "Traceback" not in err and len(rows_of(tmp_path)) == 1


def test_a_nan_loss_is_a_failed_row_caught_in_the_first_step(tmp_path, monkeypatch):
    (tmp_path / "kdb_nan_method.py").write_text(textwrap.dedent("""
        import torch, kdbench
        from kdbench.distill.methods.hinton import Hinton

        class NaNKD(Hinton):
            '''Returns NaN.'''
            def forward(self, x, y):
                out = super().forward(x, y)
                out["loss"] = out["loss"] * float("nan")
                return out

        @kdbench.hookimpl
        def register_methods(register):
            register("nankd", NaNKD)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "out"
    assert main(["run", "--methods", "nankd", "--plugin", "kdb_nan_method", "--out", str(out), *TINY_RUN]) == 1
    failed = [r for r in rows_of(out) if r["method"] == "nankd"][0]
    assert failed["status"] == "failed" and "NonFiniteLossError: loss became nan at epoch 1, step 1" in failed["error"]
    assert [r["status"] for r in rows_of(out) if r["method"] == "scratch"] == ["ok"]


def _one_class_folder(tmp_path):
    for i in range(12):
        Image.fromarray(np.full((16, 16), i * 10, np.uint8)).save(_mk(tmp_path / "imgs" / "only" / f"{i}.png"))
    return tmp_path / "imgs"


def _mk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _bad_checkpoint(tmp_path):
    path = tmp_path / "other.pt"
    torch.save(TinyCNN(5, 3).state_dict(), path)
    return path


def _bad_toml(tmp_path):
    path = tmp_path / "bench.toml"
    path.write_text('[benchmark]\nmethods = ["hinton"\nseeds = [0]\n')
    return path


def _bad_npz(tmp_path):
    (tmp_path / "breastmnist.npz").write_bytes(b"garbage")
    return tmp_path


def _dup_plugin(tmp_path):
    (tmp_path / "kdb_dup2.py").write_text("import kdbench\n@kdbench.hookimpl\ndef register_methods(register):\n"
                                          "    register('fitnets', object)\n")
    return "kdb_dup2"


def _broken_plugin(tmp_path):
    (tmp_path / "kdb_broken2.py").write_text("import not_installed_anywhere\n")
    return "kdb_broken2"


def _file_as_dir(tmp_path):
    (tmp_path / "afile").write_text("x")
    return tmp_path / "afile" / "out"


BAD_INPUTS = [
    ("unknown component", lambda t: ["--methods", "hintn"], "unknown method 'hintn'; did you mean 'hinton'?"),
    ("malformed option value", lambda t: ["--method-opt", "hinton.T=hot"], "option hinton.T='hot' is not a valid float"),
    ("unknown method option", lambda t: ["--method-opt", "hinton.tau=2"], "method hinton has no option 'tau'"),
    ("nonexistent data path", lambda t: ["--datasets", "folder:/no/such/dir"], "/no/such/dir is not a directory"),
    ("malformed npz", lambda t: ["--datasets", "medmnist:breastmnist", "--data-root", str(_bad_npz(t))],
     "cannot read"),
    ("one class", lambda t: ["--datasets", f"folder:{_one_class_folder(t)}"], "has only one class"),
    ("checkpoint of another architecture", lambda t: ["--teachers", "smallcnn", "--teacher-checkpoint",
                                                      str(_bad_checkpoint(t))], "does not fit the model"),
    ("image too small", lambda t: ["--students", "inception_v3"], "model inception_v3 cannot take the 32x32 images"),
    ("empty fraction", lambda t: ["--fractions", "0.001"], "fraction 0.001 of 96 training images keeps 0"),
    ("TOML syntax error", lambda t: ["--config", str(_bad_toml(t))], "TOML syntax error"),
    ("plugin fails to import", lambda t: ["--plugin", _broken_plugin(t)], "--plugin kdb_broken2: cannot import it"),
    ("duplicate name", lambda t: ["--plugin", _dup_plugin(t)], "'fitnets' is registered twice"),
    ("unwritable output", lambda t: ["--out", str(_file_as_dir(t))], "cannot create output directory"),
    ("negative batch size", lambda t: ["--batch-size", "-4"], "--batch-size -4 must be at least 1"),
    ("zero batch size", lambda t: ["--batch-size", "0"], "--batch-size 0 must be at least 1"),
    ("negative lr", lambda t: ["--lr", "-1"], "--lr -1.0 must be a positive finite number"),
    ("nan lr", lambda t: ["--lr", "nan"], "--lr nan must be a positive finite number"),
    ("no xai samples", lambda t: ["--xai-samples", "0"], "--xai-samples 0 must be at least 1"),
    ("duplicate seed", lambda t: ["--seeds", "0,0"], "--seeds lists 0 twice"),
    ("duplicate fraction", lambda t: ["--fractions", "0.5,1,0.5"], "--fractions lists 0.5 twice"),
    ("negative temperature", lambda t: ["--method-opt", "hinton.T=-2"], "hinton: T=-2.0 must be > 0"),
    ("zero explanation weight", lambda t: ["--methods", "e2kd", "--method-opt", "e2kd.lam=0"],
     "e2kd: lam=0.0 must be > 0 (lam=0 is hinton)"),
]


@pytest.mark.parametrize("case,args,message", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_one_line_with_exit_2(case, args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(tmp_path))
    extra = args(tmp_path)
    out = [] if "--out" in extra else ["--out", str(tmp_path / "results")]
    code = main(["run", "--methods", "hinton", *TINY_RUN, *out, *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    if case == "TOML syntax error":
        assert "line 3" in err


def test_corrupt_cached_teacher_is_detected_rebuilt_and_pruned(tmp_path, capsys):
    from kdbench.run.store import ArtifactStore

    cache = tmp_path / "cache"
    args = ["run", "--methods", "hinton", *TINY_RUN, "--cache-dir", str(cache)]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    teacher = next((cache / "teachers").glob("*.pt"))
    teacher.write_bytes(teacher.read_bytes()[:100])  # truncated
    assert [a.ok for a in ArtifactStore(cache).entries() if a.kind == "teachers"] == [False]
    with pytest.warns(UserWarning, match="is corrupt .*rebuilding it"):
        assert main([*args, "--out", str(tmp_path / "b")]) == 0
    assert [r["teacher_cached"] for r in rows_of(tmp_path / "b") if r["method"] == "teacher"] == [False]
    assert all(a.ok for a in ArtifactStore(cache).entries())
    assert main(["cache", "prune", "--all", "--cache-dir", str(cache)]) == 0
    assert ArtifactStore(cache).entries() == []


def test_an_interrupt_swallowed_on_the_way_still_stops_the_run_at_the_next_job():
    """A KeyboardInterrupt raised inside a __del__ is printed as ignored; the request is not lost."""
    from kdbench.run import interrupts

    previous = interrupts.install()
    try:
        class Finaliser:
            def __del__(self):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # the handler runs here and its exception is swallowed

        Finaliser()
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
    finally:
        interrupts.restore(previous)
    interrupts.install()
    interrupts.check()  # a new run starts with no pending request
    interrupts.restore(previous)


def test_a_jobs_rows_land_together_even_if_a_reporter_dies_on_the_first(tmp_path, monkeypatch):
    """A job counts as done once its predictive row exists, so its explanation rows must be there too."""
    from kdbench.plugins import Plugins

    def die(self, row):
        raise KeyboardInterrupt  # a reporter plugin that takes the process down mid-job

    monkeypatch.setattr(Plugins, "notify_result", die)
    out = tmp_path / "out"
    code = main(["run", "--methods", "hinton", *TINY_RUN, "--explainers", "random,saliency", "--xai-samples", "8",
                 "--out", str(out)])
    assert code == 130  # interrupted
    rows = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    done = {r["config_hash"] for r in rows if r["kind"] == "predictive"}
    assert done  # the teacher's rows were written before the reporter died
    for h in done:
        assert sorted(r["explainer"] for r in rows if r["config_hash"] == h and r["kind"] == "explanation") == \
            ["random", "saliency"]
