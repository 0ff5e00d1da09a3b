"""Malformed inputs are one line on stderr and exit 2, never a traceback; garbage never costs a row.

Benchmark files of the wrong shape, plugin settings of the wrong shape, teacher checkpoints
that are not state dicts, garbage lines in runs.jsonl, plugins whose hooks raise or do not
match the hookspecs, output folders that cannot be created, and leaderboard flags that name
nothing. No test trains a model: where a run is needed its jobs are faked in-process.
"""

from __future__ import annotations

import errno
import importlib.metadata as md
import json
import os
import random
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import TINY_RUN, one_line_error

from kdbench.builtins.models import TinyCNN
from kdbench.cli import main
from kdbench.plugins import ENTRY_POINT_GROUP, load_plugins
from kdbench.run.results import read_rows
from kdbench.run.runner import Runner, RunSummary
from kdbench.run.steps import JobSteps, TeacherResult

RUN = ["run", "--methods", "hinton", *TINY_RUN]


pytestmark = pytest.mark.usefixtures("wide_console")  # one message, one line


@pytest.fixture
def no_training(monkeypatch):
    """Runs stop after the checks (validation, data, pre-flight, lock): nothing is trained."""
    monkeypatch.setattr(Runner, "_run", lambda self, lock: RunSummary(self.out_dir))


def fake_row(steps: JobSteps, job, **extra) -> dict:
    return dict(steps.base_row(job), accuracy=0.5, auc=0.5, f1=0.5, params=1, flops=1, latency_ms=1.0,
                train_seconds=0.0, **extra)


@pytest.fixture
def fake_jobs(monkeypatch):
    """Runs go through the real runner (resume, writer, reporter hooks) with instant fake jobs."""
    monkeypatch.setattr(JobSteps, "teacher", lambda self, job, bundle, done: TeacherResult(None, False, []))
    monkeypatch.setattr(JobSteps, "job_rows", lambda self, job, teacher: [fake_row(self, job)])


def write_module(tmp_path, monkeypatch, name, body):
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(name, None)


# -- benchmark files -----------------------------------------------------------------------
BAD_TOML = [
    ("random bytes", random.Random(0).randbytes(512), "is not UTF-8 text"),
    ("non-UTF-8 string", b'[benchmark]\nname = "caf\xe9"\n', "is not UTF-8 text"),
    ("seeds is text", '[benchmark]\nseeds = "abc"\n', "seeds must hold int values"),
    ("seeds not whole", "[benchmark]\nseeds = [1.5]\n", "seeds must hold int values"),
    ("seeds infinite", "[benchmark]\nseeds = [inf]\n", "seeds must hold int values"),
    ("epochs is a list", "[benchmark]\nepochs = [1]\n", "epochs must be a number"),
    ("methods is a number", "[benchmark]\nmethods = 5\n", "methods must be a list"),
    ("names are tables", "[benchmark]\nstudents = [{a = 1}]\n", "students must hold str values"),
    ("a table for a number", "[benchmark.epochs]\na = 1\n", "epochs must be a number"),
    ("a table for text", "[benchmark.name]\nx = 1\n", "name must be text"),
    ("a number for text", "[benchmark]\ndevice = 5\n", "device must be text"),
    ("a date for text", "[benchmark]\nname = 1979-05-27\n", "name must be text"),
    ("unknown profile", '[benchmark]\nxai_profile = "fast"\n', "xai_profile must be one of default, full"),
    ("unknown selection", '[benchmark]\nteacher_selection = "f1"\n',
     "teacher_selection must be one of accuracy, auc, loss"),
    ("benchmark is a number", "benchmark = 5\n", "benchmark must be a table"),
    ("benchmark is an array of tables", "[[benchmark]]\nseeds = [0]\n", "benchmark must be a table"),
    ("datasets is a number", "datasets = 5\n", "datasets must be a table"),
    ("unknown top-level key", "seeds = [0]\n", "unknown top-level key 'seeds'"),
    ("unknown top-level table", "[training]\nepochs = 1\n", "unknown top-level table [training]"),
    ("unknown setting", "[benchmark]\nepoch = 1\n", "unknown benchmark setting 'epoch'"),
]


@pytest.mark.parametrize("case,content,message", BAD_TOML, ids=[c[0] for c in BAD_TOML])
def test_malformed_benchmark_file_is_one_line(case, content, message, tmp_path, capsys, no_training):
    path = tmp_path / "bench.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    line = one_line_error(main([*RUN, "--config", str(path), "--out", str(tmp_path / "o")]), capsys.readouterr().err)
    assert message in line
    if case.startswith("unknown top-level"):  # the valid keys are listed
        assert "[benchmark], [datasets.<name>], [methods.<name>], [plugins.<name>]" in line
    if case == "unknown setting":  # the valid settings are listed, and only settings of [benchmark]
        assert "epochs" in line and "seeds" in line and "plugin_settings" not in line


# -- plugin settings -----------------------------------------------------------------------
BAD_PLUGIN_SETTINGS = [
    ("[benchmark] plugin_settings", "[benchmark]\nplugin_settings = 5\n", [], "unknown benchmark setting"),
    ("[plugin_settings] table", "[plugin_settings]\nmlflow = 5\n", [], "unknown top-level table [plugin_settings]"),
    ("[plugins] value not a table", "[plugins]\nmlflow = 5\n", [], "[plugins] must hold one table per name"),
    ("--plugin-opt without key", "", ["--plugin-opt", "mlflow"], "--plugin-opt 'mlflow' is malformed"),
    ("--plugin-opt without name", "", ["--plugin-opt", ".uri=x"], "--plugin-opt '.uri=x' is malformed"),
    ("--plugin-opt without value", "", ["--plugin-opt", "mlflow.uri"], "--plugin-opt 'mlflow.uri' is malformed"),
]


@pytest.mark.parametrize("case,toml,flags,message", BAD_PLUGIN_SETTINGS, ids=[c[0] for c in BAD_PLUGIN_SETTINGS])
def test_plugin_settings_of_the_wrong_shape_are_one_line(case, toml, flags, message, tmp_path, capsys, no_training):
    path = tmp_path / "bench.toml"
    path.write_text(toml)
    code = main([*RUN, "--config", str(path), "--out", str(tmp_path / "o"), *flags])
    assert message in one_line_error(code, capsys.readouterr().err)


# -- teacher checkpoints -------------------------------------------------------------------
def _save(obj):
    return lambda path: torch.save(obj, path)


BAD_CHECKPOINTS = [
    ("a tensor", _save(torch.zeros(3)), "holds a Tensor object, not a state_dict"),
    ("a list", _save([torch.zeros(3)]), "holds a list object, not a state_dict"),
    ("a number", _save(5), "holds a int object, not a state_dict"),
    ("None", _save(None), "holds a NoneType object, not a state_dict"),
    ("state_dict entry not a dict", _save({"state_dict": [1, 2]}), "holds a list object, not a state_dict"),
    ("a dict of non-tensors", _save({"a": 1, "b": "x"}), "'a' holds a int object, not a tensor"),
    ("the right names, no tensors", _save({k: 1.0 for k in TinyCNN(3, 3).state_dict()}), "not a tensor"),
    ("keys that are not names", _save({1: torch.zeros(1)}), "has a key 1 that is not a parameter name"),
    ("random bytes", lambda path: path.write_bytes(random.Random(1).randbytes(300)), "cannot be read"),
    ("an empty file", lambda path: path.write_bytes(b""), "cannot be read"),
]


@pytest.mark.parametrize("case,make,message", BAD_CHECKPOINTS, ids=[c[0] for c in BAD_CHECKPOINTS])
def test_teacher_checkpoint_that_is_not_a_state_dict_is_one_line(case, make, message, tmp_path, capsys,
                                                                  monkeypatch):
    monkeypatch.setattr(Runner, "_run", lambda self, lock: pytest.fail("the checks let a bad checkpoint through"))
    path = tmp_path / "teacher.pt"
    make(path)
    code = main([*RUN, "--out", str(tmp_path / "o"), "--teacher-checkpoint", str(path)])
    line = one_line_error(code, capsys.readouterr().err)
    assert message in line and str(path) in line


def test_a_teacher_checkpoint_under_home_is_loaded_by_the_teacher_step_too(tmp_path, monkeypatch, capsys):
    """`~/t.pt` (quoted, or from a benchmark file) passed the checks but every job failed: 't.pt does not exist'."""
    from kdbench.builtins.datasets import synthetic
    from kdbench.distill.models import create_model

    info = synthetic(n_train=96, n_val=48, n_test=48).info
    model = create_model("tinycnn", load_plugins().models, num_classes=info.num_classes, in_chans=info.in_chans,
                         image_size=info.image_size)
    torch.save(model.state_dict(), tmp_path / "t.pt")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(JobSteps, "job_rows", lambda self, job, teacher: [fake_row(self, job)])
    monkeypatch.setattr(JobSteps, "evaluate", lambda self, model, bundle, task: {"accuracy": 0.5, "auc": 0.5,
                                                                                 "f1": 0.5})
    out = tmp_path / "out"
    code = main([*RUN, "--out", str(out), "--teacher-checkpoint", "~/t.pt"])
    assert code == 0, capsys.readouterr().out
    rows, _ = read_rows(out / "runs.jsonl")
    assert [r["method"] for r in rows] == ["teacher", "scratch", "hinton"]
    assert all(r["status"] == "ok" for r in rows)


# -- runs.jsonl ----------------------------------------------------------------------------
GARBAGE_LINES = [
    b"[1, 2, 3]",
    b"42",
    b'"a string"',
    b"null",
    b"\xff\xfe not utf-8 \x80",
    b'{"kind": "predictive", "config_hash": "nostatus"}',
    b'{"kind": "predictive", "status": "ok"}',
    b'{"status": "ok", "config_hash": "badseed", "seed": "zero"}',
    b'{"status": "ok", "config_hash": "badopts", "method_options": 5}',
    b"[" * 100_000 + b"]" * 100_000,
    b"{not json",
]


def real_rows(n: int = 3) -> list[dict]:
    """Rows shaped as `kdbench run` writes them: a teacher row, students, a failed job, an explanation row."""
    base = {"kind": "predictive", "dataset": "synthetic", "teacher": "tinycnn", "student": "smallcnn",
            "method": "hinton", "seed": 0, "fraction": 1.0, "explainer": None, "status": "ok", "error": None,
            "epochs": 1, "method_options": {}, "device": "cpu", "timestamp": "2026-11-22T07:39:24+00:00",
            "kdbench_version": "0.1.0", "torch_version": "2.14.1", "python_version": "3.11.7",
            "timm_version": "1.0.31", "quantus_version": "0.6.0", "captum_version": "0.9.0",
            "checkpoint": "/cache/students/x.pt", "accuracy": 0.5, "auc": 0.6, "f1": 0.4, "params": 16851,
            "flops": 12681408, "latency_ms": 0.29, "train_seconds": 1.96, "best_epoch": 1, "train_images": 48}
    rows = [dict(base, method="teacher", student="tinycnn", config_hash="teacher0", teacher_cached=False),
            dict(base, method="scratch", config_hash="scratch0"),
            dict(base, status="failed", error="RuntimeError: boom at x.py:1", config_hash="fitnets0",
                 method="fitnets", accuracy=None, auc=None, f1=None),
            {k: base[k] for k in ("dataset", "teacher", "student", "method", "seed", "fraction", "epochs")}
            | {"kind": "explanation", "explainer": "gradcam", "xai_samples": 8, "status": "ok", "error": None,
               "config_hash": "hinton0", "pointing_game": 0.5, "sparseness": 0.4}]
    return [dict(r, seed=s, config_hash=f"{r['config_hash']}-{s}") for s in range(n) for r in rows]


def write_interleaved(path, rows, garbage) -> bytes:
    lines = []
    for i, row in enumerate(rows):
        lines.append(json.dumps(row).encode())
        lines.append(garbage[i % len(garbage)])
    data = b"\n".join(lines + garbage) + b"\n"
    path.write_bytes(data)
    return data


def test_read_rows_keeps_every_row_and_skips_each_garbage_line_with_one_warning(tmp_path):
    path = tmp_path / "runs.jsonl"
    rows = real_rows()
    write_interleaved(path, rows, GARBAGE_LINES)
    got, warnings = read_rows(path)
    assert got == rows
    assert len(warnings) == len(rows) + len(GARBAGE_LINES)
    assert all(w.startswith(f"{path}:") for w in warnings)
    assert any("not UTF-8" in w for w in warnings) and any("without status" in w for w in warnings)
    assert any("seed is a JSON string" in w for w in warnings) and any("a JSON array" in w for w in warnings)


def test_resuming_over_garbage_lines_keeps_every_row_and_rewrites_nothing(tmp_path, capsys, fake_jobs):
    out = tmp_path / "out"
    args = [*RUN, "--out", str(out)]
    assert main(args) == 0  # scratch and hinton, faked
    first = (out / "runs.jsonl").read_bytes()
    stored = [r["config_hash"] for r in read_rows(out / "runs.jsonl")[0]]
    assert len(stored) == 2
    with open(out / "runs.jsonl", "ab") as f:
        f.write(b"\n".join(GARBAGE_LINES) + b"\n")
    before = (out / "runs.jsonl").read_bytes()
    capsys.readouterr()
    assert main(args) == 0  # every job is found done despite the garbage around it
    stderr = capsys.readouterr().err  # warnings go to stderr
    assert stderr.count("ignoring") >= len(GARBAGE_LINES) and "Traceback" not in stderr
    assert (out / "runs.jsonl").read_bytes() == before and before.startswith(first)
    assert [r["config_hash"] for r in read_rows(out / "runs.jsonl")[0]] == stored
    assert main([*args, "--seeds", "0,1"]) == 0  # new jobs are appended after the garbage, never over it
    after = (out / "runs.jsonl").read_bytes()
    assert after.startswith(before)
    assert [r["config_hash"] for r in read_rows(out / "runs.jsonl")[0]][:2] == stored


def test_leaderboard_skips_garbage_lines_and_keeps_the_rows(tmp_path, capsys):
    path = tmp_path / "runs.jsonl"
    rows = real_rows()
    data = write_interleaved(path, rows, GARBAGE_LINES + [b'{"status": "ok", "config_hash": "no-job-columns"}'])
    assert main(["leaderboard", str(tmp_path), "--no-plots"]) == 0
    out = capsys.readouterr()  # warnings on stderr, tables on stdout
    assert "Traceback" not in out.err and "warning" not in out.out
    assert out.err.count("ignoring") == 2 * len(GARBAGE_LINES)
    assert "no-job-columns" in out.err  # read, but it cannot be placed in a table: left out with a warning
    assert path.read_bytes() == data  # never rewritten
    md_text = (tmp_path / "leaderboard.md").read_text()
    assert "scratch" in md_text and "tinycnn" in md_text and "gradcam" in md_text  # the rows made it in


# -- plugins -------------------------------------------------------------------------------
BROKEN_PLUGINS = {
    "kdb_raises": ("""
        import kdbench
        from kdbench.distill.methods.hinton import Hinton

        @kdbench.hookimpl
        def register_models(register):
            register("half_registered_model", object)

        @kdbench.hookimpl
        def register_methods(register):
            register("half_registered", Hinton)
            raise RuntimeError("boom while registering")

        @kdbench.hookimpl
        def on_result(row):
            raise AssertionError("a broken plugin's observers must not be called")
    """, "register_methods: RuntimeError: boom while registering"),
    "kdb_extra_arg": ("""
        import kdbench

        @kdbench.hookimpl
        def register_methods(register, config):
            pass
    """, "PluginValidationError"),
    "kdb_bad_call": ("""
        import kdbench

        @kdbench.hookimpl
        def register_models(register):
            register("only_a_name")
    """, "register_models: TypeError"),
    "kdb_wrapper": ("""
        import kdbench

        @kdbench.hookimpl(hookwrapper=True)
        def register_methods(register):
            register("wrapped", object)
    """, "PluginValidationError"),
}

GOOD_PLUGIN = """
    import kdbench
    from kdbench.distill.methods.hinton import Hinton

    class Warm(Hinton):
        '''Hinton at T=8.'''
        defaults = {"T": 8.0, "alpha": 0.9}

    @kdbench.hookimpl
    def register_methods(register):
        register("warm", Warm, help="[/] a help line that looks like rich markup [red]")
"""


@pytest.fixture
def plugin_modules(tmp_path, monkeypatch):
    for name, (body, _) in BROKEN_PLUGINS.items():
        write_module(tmp_path, monkeypatch, name, body)
    write_module(tmp_path, monkeypatch, "kdb_good", GOOD_PLUGIN)
    return [*BROKEN_PLUGINS, "kdb_good"]


def test_plugins_whose_hooks_raise_or_do_not_match_are_broken_and_the_rest_load(plugin_modules):
    plugins = load_plugins(plugin_modules)
    broken = {info.name: info.error for info in plugins.broken}
    for name, (_, error) in BROKEN_PLUGINS.items():
        assert error in broken.get(name, ""), (name, broken)
        assert "\n" not in broken[name]
    assert "warm" in plugins.methods and "hinton" in plugins.methods
    # nothing of a broken plugin stays: no half registration, no observer hooks
    assert "half_registered" not in plugins.methods and "half_registered_model" not in plugins.models
    assert all(impl.plugin_name not in BROKEN_PLUGINS for impl in plugins.pm.hook.on_result.get_hookimpls())
    assert plugins.notify_result({"status": "ok"}) == []


def test_kdbench_plugins_lists_broken_plugins_with_their_errors(plugin_modules, capsys):
    args = ["plugins"]
    for name in plugin_modules:
        args += ["--plugin", name]
    assert main(args) == 0
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    for name, (_, error) in BROKEN_PLUGINS.items():
        assert f"broken plugin {name} ({name}): {error}" in out.out
    assert "[/] a help line that looks like rich markup [red]" in out.out  # plugin text is printed, not parsed
    assert "warm" in out.out


def test_a_broken_entry_point_plugin_is_listed_and_the_rest_load(tmp_path, monkeypatch, capsys):
    write_module(tmp_path, monkeypatch, "kdb_ep_raises", BROKEN_PLUGINS["kdb_raises"][0])
    write_module(tmp_path, monkeypatch, "kdb_ep_good", GOOD_PLUGIN)
    eps = [md.EntryPoint(name="raises", value="kdb_ep_raises", group=ENTRY_POINT_GROUP),
           md.EntryPoint(name="good", value="kdb_ep_good", group=ENTRY_POINT_GROUP)]
    monkeypatch.setattr("kdbench.plugins.md.entry_points", lambda group: eps if group == ENTRY_POINT_GROUP else [])
    plugins = load_plugins()
    assert [i.name for i in plugins.broken] == ["raises"]
    assert "boom while registering" in plugins.broken[0].error
    assert "warm" in plugins.methods and "half_registered" not in plugins.methods
    assert main(["plugins"]) == 0
    assert "broken plugin raises" in capsys.readouterr().out


def test_kdbench_run_warns_about_broken_plugins_and_reporter_failures_never_cost_a_row(
        tmp_path, monkeypatch, capsys, fake_jobs):
    write_module(tmp_path, monkeypatch, "kdb_run_raises", BROKEN_PLUGINS["kdb_raises"][0])
    write_module(tmp_path, monkeypatch, "kdb_bad_reporter", """
        import kdbench

        @kdbench.hookimpl
        def on_result(row):
            raise RuntimeError("reporter down [/] (text, not markup)")

        @kdbench.hookimpl
        def on_run_end(out_dir, paths):
            raise RuntimeError("reporter still down")
    """)
    out = tmp_path / "out"
    code = main([*RUN, "--out", str(out), "--plugin", "kdb_run_raises", "--plugin", "kdb_bad_reporter"])
    std = capsys.readouterr()
    assert code == 0, std.err
    assert "plugin kdb_run_raises (kdb_run_raises) failed to load: register_methods: RuntimeError" in std.err
    assert "on_result observer kdb_bad_reporter failed: RuntimeError: reporter down [/] (text" in std.err
    assert "on_run_end observer kdb_bad_reporter failed" in std.err
    assert "observers must not be called" not in std.err  # the broken plugin's hooks are gone
    rows, warnings = read_rows(out / "runs.jsonl")
    assert [r["method"] for r in rows] == ["scratch", "hinton"] and not warnings


def test_a_plugin_error_message_with_newlines_is_still_one_line(tmp_path, monkeypatch, capsys):
    write_module(tmp_path, monkeypatch, "kdb_multiline", """
        import kdbench
        from kdbench.errors import ConfigError

        @kdbench.hookimpl
        def register_methods(register):
            raise ConfigError("first line\\nsecond line")
    """)
    line = one_line_error(main(["plugins", "--plugin", "kdb_multiline"]), capsys.readouterr().err)
    assert "first line second line" in line


# -- output folders ------------------------------------------------------------------------
def _a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    return tmp_path / "afile"


def _read_only_dir(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    return folder / "out"


def _leaderboard_input(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in real_rows(1)))
    return tmp_path / "in"


OUT_FOLDERS = [
    ("run --out is a file", "run", lambda t: _a_file(t), "cannot create output directory"),
    ("run --out under a file", "run", lambda t: _a_file(t) / "out", "cannot create output directory"),
    ("run --out in a read-only folder", "run", _read_only_dir, "Permission denied"),
    ("leaderboard --out is a file", "leaderboard", lambda t: _a_file(t), "cannot create output directory"),
    ("leaderboard --out under a file", "leaderboard", lambda t: _a_file(t) / "out", "cannot create output directory"),
    ("leaderboard --out in a read-only folder", "leaderboard", _read_only_dir, "Permission denied"),
]


@pytest.mark.parametrize("case,command,make,message", OUT_FOLDERS, ids=[c[0] for c in OUT_FOLDERS])
def test_an_output_folder_that_cannot_be_made_is_one_line(case, command, make, message, tmp_path, capsys,
                                                          no_training, monkeypatch):
    out = make(tmp_path)
    if "read-only" in case and os.geteuid() == 0:  # root writes into read-only folders: refuse as the OS would
        real_mkdir = Path.mkdir

        def mkdir(self, *args, **kwargs):
            if Path(self).is_relative_to(tmp_path / "ro"):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
            return real_mkdir(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", mkdir)
    if command == "run":
        args = [*RUN, "--out", str(out)]
    else:
        args = ["leaderboard", str(_leaderboard_input(tmp_path)), "--out", str(out), "--no-plots"]
    try:
        line = one_line_error(main(args), capsys.readouterr().err)
    finally:
        if (tmp_path / "ro").exists():
            (tmp_path / "ro").chmod(0o700)
    assert message in line and str(out.parent if "read-only" in case else out) in line


# -- leaderboard flags and inputs ----------------------------------------------------------
def _garbage_only(tmp_path):
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "runs.jsonl").write_bytes(b"\n".join(GARBAGE_LINES) + b"\n")
    return tmp_path / "g"


def _empty_dir(tmp_path):
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


def _empty_file(tmp_path):
    (tmp_path / "runs.jsonl").write_bytes(b"\n\n")
    return tmp_path / "runs.jsonl"


BAD_LEADERBOARD = [
    ("a folder without runs.jsonl", lambda t: [str(_empty_dir(t))], "no runs.jsonl there"),
    ("a runs.jsonl of garbage only", lambda t: [str(_garbage_only(t))], "no result rows in"),
    ("an empty runs.jsonl", lambda t: [str(_empty_file(t))], "it is empty"),
    ("--format xyz", lambda t: [str(_leaderboard_input(t)), "--format", "xyz"], "unknown format 'xyz'"),
    ("--format without a name", lambda t: [str(_leaderboard_input(t)), "--format", ","], "no format given"),
    ("--sort nosuchmetric", lambda t: [str(_leaderboard_input(t)), "--sort", "nosuchmetric"],
     "unknown metric 'nosuchmetric' for --sort"),
    ("--metrics nosuch", lambda t: [str(_leaderboard_input(t)), "--metrics", "accuracy,nosuch"],
     "unknown metric 'nosuch' for --metrics"),
]


@pytest.mark.parametrize("case,args,message", BAD_LEADERBOARD, ids=[c[0] for c in BAD_LEADERBOARD])
def test_bad_leaderboard_input_is_one_line_and_writes_nothing(case, args, message, tmp_path, capsys):
    argv = args(tmp_path)
    line = one_line_error(main(["leaderboard", *argv, "--no-plots"]), capsys.readouterr().err)
    assert message in line
    if "--" in case:  # the choices are named
        assert "accuracy" in line or "md, latex, html, csv, json" in line
        assert not (tmp_path / "in" / "leaderboard.md").exists()


@pytest.mark.parametrize("args,message", [
    (["--students", ""], "--students is empty"),
    (["--teachers", ""], "--teachers is empty"),
    (["--datasets", ""], "--datasets is empty"),
    (["--fractions", ""], "--fractions is empty"),
    (["--methods", "", "--no-baseline"], "no methods to run"),
    (["--seeds", "-1"], "seed -1 is outside"),
    (["--seeds", str(2**32)], "is outside [0, 2**32)"),
    (["--method-opt", "hinton.T=inf"], "is not a valid float"),
    (["--method-opt", "hinton.alpha=nan"], "is not a valid float"),
    (["--dataset-opt", "synthetic.data_seed=-1"], "data_seed -1 is outside"),
    (["--amp", "--device", "cpu"], "--amp is mixed precision on CUDA and this run is on the CPU"),
])
def test_empty_lists_out_of_range_seeds_and_infinite_options_are_refused(args, message, tmp_path, capsys):
    from conftest import TINY_RUN

    from kdbench.cli import main

    code = main(["run", "--methods", "hinton", "--out", str(tmp_path / "o"), *TINY_RUN, *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "runs.jsonl").exists()


def test_a_dataset_too_large_for_memory_is_one_line(tmp_path, capsys, monkeypatch):
    from conftest import TINY_RUN

    from kdbench.builtins import datasets
    from kdbench.cli import main

    def huge(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(datasets, "render", huge)
    code = main(["run", "--methods", "hinton", "--out", str(tmp_path / "o"), *TINY_RUN])
    err = capsys.readouterr().err
    assert code == 2 and "does not fit in memory" in err and "Traceback" not in err


def test_names_from_runs_jsonl_are_never_terminal_markup(tmp_path, capsys):
    import json

    from kdbench.cli import main

    row = {"kind": "predictive", "dataset": "d[/]", "teacher": "t[bold]", "student": "s[/x]", "method": "m[/]",
           "seed": 0, "fraction": 1.0, "explainer": None, "status": "ok", "config_hash": "h", "accuracy": 0.5,
           "auc": 0.5, "f1": 0.5, "params": 1, "flops": 1, "latency_ms": 1.0}
    (tmp_path / "runs.jsonl").write_text(json.dumps(row) + "\n")
    assert main(["leaderboard", str(tmp_path), "--no-plots"]) == 0
    assert "m[/]" in capsys.readouterr().out
