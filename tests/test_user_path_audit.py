"""Inputs a user audit found mishandled: each is now one line and exit 2, or named correctly.

No test trains a model: every command here stops at pre-flight or reads a results folder.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from conftest import TINY_RUN, one_line_error

from kdbench.cli import main

DRY = ["run", "--methods", "hinton", *TINY_RUN, "--dry-run"]


pytestmark = pytest.mark.usefixtures("wide_console")  # one message, one line


def _error(capsys, argv) -> str:
    code = main(argv)
    return one_line_error(code, capsys.readouterr().err)


def test_an_unreadable_runs_jsonl_is_one_line_not_a_traceback(tmp_path, capsys):
    out = tmp_path / "out"
    (out / "runs.jsonl").mkdir(parents=True)  # a folder where the file belongs
    assert "no runs.jsonl there" in _error(capsys, ["leaderboard", str(out)])
    assert "cannot read" in _error(capsys, ["run", "--methods", "hinton", *TINY_RUN, "--out", str(out), "--dry-run"])


@pytest.mark.parametrize("teacher", ["tinycnn", "smallcnn", "resnet18_28"])
def test_teacher_pretrained_is_refused_for_a_model_without_weights_instead_of_ignored(teacher, tmp_path, capsys):
    argv = [*DRY, "--teachers", teacher, "--teacher-pretrained", "--out", str(tmp_path / "o")]
    assert f"model {teacher} has no pretrained weights; drop --teacher-pretrained" in _error(capsys, argv)


def test_teacher_pretrained_with_a_checkpoint_is_refused(tmp_path, capsys):
    import torch

    from kdbench.builtins.models import TinyCNN

    ckpt = tmp_path / "t.pt"
    torch.save(TinyCNN(3, 3).state_dict(), ckpt)
    argv = [*DRY, "--teacher-pretrained", "--teacher-checkpoint", str(ckpt), "--out", str(tmp_path / "o")]
    assert "give one of them" in _error(capsys, argv)


def test_a_teacher_checkpoint_that_is_a_folder_says_so(tmp_path, capsys):
    argv = [*DRY, "--teacher-checkpoint", str(tmp_path), "--out", str(tmp_path / "o")]
    assert f"teacher checkpoint {tmp_path} is a folder, not a file" in _error(capsys, argv)


def test_error_text_is_printed_as_given_not_as_emoji_codes(tmp_path, capsys):
    message = _error(capsys, [*DRY, "--device", "cuda:abc", "--out", str(tmp_path / "o")])
    assert "--device cuda:abc" in message  # rich had turned ":abc" into an emoji


def test_dry_run_refuses_an_out_that_a_run_would_refuse(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert f"output directory {afile} is a file" in _error(capsys, [*DRY, "--out", str(afile)])
    assert "which is a file" in _error(capsys, [*DRY, "--out", str(afile / "sub")])
    assert "--out is empty" in _error(capsys, [*DRY, "--out", ""])


@pytest.mark.parametrize("argv,expected", [
    (["--ray-cpus-per-task", "0"], "--ray-cpus-per-task 0 must be at least 1"),
    (["--datasets", "synthetic:foo"], "synthetic takes nothing after the colon"),
])
def test_values_that_were_silently_changed_or_ignored_are_refused(argv, expected, tmp_path, capsys):
    assert expected in _error(capsys, [*DRY, *argv, "--out", str(tmp_path / "o")])


def test_a_benchmark_name_that_climbs_out_of_results_is_refused(tmp_path, capsys):
    config = tmp_path / "b.toml"
    config.write_text('[benchmark]\nname = "../../etc"\n')
    assert "must be a plain folder name" in _error(capsys, ["run", "--config", str(config), *TINY_RUN, "--dry-run"])


def _rows(path, statuses):
    base = {"kind": "predictive", "dataset": "synthetic", "teacher": "tinycnn", "student": "smallcnn", "seed": 0,
            "fraction": 1.0, "config_hash": "h", "error": "RuntimeError: boom"}
    path.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(dict(base, method=m, status=s, config_hash=f"h{i}")) for i, (m, s) in enumerate(statuses)]
    (path / "runs.jsonl").write_text("\n".join(lines) + "\n")
    return path


def test_leaderboard_refuses_an_empty_format_list_and_says_why_a_folder_of_failed_jobs_has_empty_tables(
        tmp_path, capsys):
    failed = _rows(tmp_path / "failed", [("scratch", "failed"), ("hinton", "failed")])
    assert main(["leaderboard", str(failed), "--no-plots"]) == 0
    err = capsys.readouterr().err
    assert "warning: every one of the 2 rows" in err and "the tables are empty" in err and "Traceback" not in err
    ok = _rows(tmp_path / "ok", [("scratch", "ok")])
    assert "no format given" in _error(capsys, ["leaderboard", str(ok), "--format", ""])


def test_ctrl_c_while_kdbench_is_still_importing_is_one_line(tmp_path):
    """The console script's launcher catches the interrupt that arrives before the CLI's handler exists."""
    code = "import sys; from kdbench.launcher import main; sys.exit(main())"
    # a background shell (nohup, CI) starts its children with SIGINT ignored: restore the terminal's default
    proc = subprocess.Popen([sys.executable, "-c", code, *DRY, "--out", str(tmp_path / "o")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(0.5)  # inside the imports (torch, timm, sklearn, quantus take seconds), or past them on a fast machine
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().startswith("kdbench: interrupted"), err


def test_a_metric_registered_without_help_is_described_by_itself_not_by_its_class():
    from kdbench.explain.metrics import DEFAULT_METRICS, XaiMetric
    from kdbench.registry import Registry

    reg = Registry("metrics")
    metric = XaiMetric("my_sparseness", DEFAULT_METRICS[3].build, True, params={"abs": True})
    reg.add("my_sparseness", metric, provider="test")
    assert reg.get("my_sparseness").help == "my_sparseness ↑ (abs=True)"  # was XaiMetric's class docstring


def test_kdbenchs_own_warnings_are_one_line_and_others_keep_pythons_format():
    from pathlib import Path

    import kdbench
    from kdbench.cli import _one_line_warning

    fmt = _one_line_warning(lambda *args: "python's format\n")
    store = Path(kdbench.__file__).parent / "run" / "store.py"
    message = UserWarning("cached teacher abc is corrupt (checksum mismatch); rebuilding it")
    assert fmt(message, UserWarning, str(store), 173) == ("warning: cached teacher abc is corrupt (checksum "
                                                         "mismatch); rebuilding it\n")
    assert fmt(UserWarning("x"), UserWarning, "/usr/lib/python3/site-packages/torch/x.py", 1) == "python's format\n"


def test_a_corrupt_cache_warning_reaches_the_terminal_as_one_line(tmp_path):
    """Through the real warnings machinery, outside pytest's recorder."""
    code = ("import warnings, sys; from kdbench.cli import _one_line_warning; import kdbench.run.store as s; "
            "warnings.formatwarning = _one_line_warning(warnings.formatwarning); "
            "warnings.warn_explicit('cached teacher abc is corrupt; rebuilding it', UserWarning, s.__file__, 173)")
    err = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True).stderr
    assert err == "warning: cached teacher abc is corrupt; rebuilding it\n"
