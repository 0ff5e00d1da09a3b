"""What a user sees: plain job-by-job lines in a log, full-width tables, the output folder named last."""

from __future__ import annotations

import importlib.metadata as md

import pytest
from conftest import TINY_RUN

from kdbench.cli import main

RUN = ["run", "--methods", "hinton", *[a for a in TINY_RUN if a != "--quiet"]]


def test_piped_output_is_one_plain_line_per_job_then_full_width_tables(tmp_path, capsys):
    assert main([*RUN, "--out", str(tmp_path / "o")]) == 0  # capsys: stdout is not a terminal
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "2 jobs to run"
    assert lines[1].startswith("teacher  synthetic tinycnn->tinycnn teacher seed=0 frac=1: ok accuracy ")
    assert lines[2].startswith("[1/2] synthetic tinycnn->smallcnn scratch seed=0 frac=1: ok accuracy ")
    assert lines[3].startswith("[2/2] synthetic tinycnn->smallcnn hinton seed=0 frac=1: ok accuracy ")
    assert " auc " in lines[3] and lines[3].endswith(" s")
    assert "| Student   | Method   |" in out  # Markdown tables, not a rich box cut to 80 columns
    assert not any(ch in out for ch in "┃━…")
    assert max(len(line) for line in lines) > 80
    assert lines[-1].startswith(f"kdbench: results in {tmp_path / 'o'}/ (3 new rows")
    assert "\x1b[" not in out and "Traceback" not in err


def test_quiet_prints_only_the_output_folder(tmp_path, capsys):
    assert main([*RUN, "--quiet", "--out", str(tmp_path / "o")]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines() == [f"kdbench: results in {tmp_path / 'o'}/ (3 new rows, 0 jobs already done, 0 failed)"]


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    out_dir, cache = tmp_path / "o", tmp_path / "cache"
    assert main([*RUN, "--dry-run", "--out", str(out_dir), "--cache-dir", str(cache)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0:2] for line in lines[:2]] == [["to", "run"], ["to", "run"]]
    assert "(teacher to train)" in lines[0] and lines[-1].startswith("dry run: 2 jobs, 2 to run")
    assert not out_dir.exists() and not cache.exists()
    assert main([*RUN, "--out", str(out_dir), "--cache-dir", str(cache)]) == 0
    capsys.readouterr()
    assert main([*RUN, "--dry-run", "--out", str(out_dir), "--cache-dir", str(cache)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(line.startswith("done") and "(teacher cached)" in line for line in lines[:2])


def test_version(capsys):
    from kdbench import __version__

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"kdbench {__version__}"


def test_help_names_the_default_of_every_setting(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("(default medtex,hinton,fitnets)", "(default gradcam,saliency,medtex-mask,random)",
                 "(default 8)", "(default 10)", "(default 64)", "(default 0.002)", "(default auto)"):
        assert flag in text, flag


def test_plugins_lists_hook_only_reporter_distributions(capsys):
    try:
        md.distribution("kdbench-mlflow")
    except md.PackageNotFoundError:
        pytest.skip("kdbench-mlflow is not installed (the README's test command installs it)")
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "kdbench-mlflow" in line)
    assert "mlflow" in line and "on_result" in line
