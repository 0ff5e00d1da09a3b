"""Property-based fuzzing of what users type and store: CLI flags, benchmark files, runs.jsonl.

The invariant is the CLI's promise: bad input is exit status 2 with exactly one line on
stderr (``kdbench: error: ...``) and no traceback; input known to be valid runs (exit 0).
Runs stop after the checks (names, options, data, pre-flight, lock): the runner's job
loop is replaced by a no-op, so nothing is trained. Deterministic (``derandomize``) and
small, so the file takes seconds.
"""

from __future__ import annotations

import json
import math

import pytest
import tomllib
from conftest import TINY_RUN
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from kdbench.cli import main
from kdbench.run.results import read_rows
from kdbench.run.runner import Runner, RunSummary

FUZZ = settings(derandomize=True, max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

#: A tiny run: tiny CNNs on a small synthetic set (flags given later override these).
BASE = ["run", "--methods", "hinton", *TINY_RUN]


@pytest.fixture
def checks_only(monkeypatch):
    """Validation, data loading and pre-flight run for real; the job loop is a no-op."""
    monkeypatch.setattr(Runner, "_run", lambda self, lock: RunSummary(self.out_dir))
    monkeypatch.setenv("COLUMNS", "300")


def call(argv, capsys) -> tuple[int, str]:
    """Run the CLI in-process; argparse's own usage errors (SystemExit 2) count as exit 2."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def assert_promise(code, err, valid):
    """``valid``: True (must run), False (must be refused) or None (unknown: either, but well behaved)."""
    assert "Traceback" not in err, err
    assert code in (0, 2), (code, err)
    if code == 2:
        lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning: ")]
        assert len(lines) == 1 and lines[0].startswith("kdbench: error: ") and len(lines[0]) > 16, err
    if valid is not None:
        assert code == (0 if valid else 2), (valid, err)
    event(f"exit {code}, validity {'unknown' if valid is None else 'valid' if valid else 'invalid'}")


# -- (a) CLI flags -------------------------------------------------------------------------
def valued(valid, invalid, *, junk=True):
    """(text, validity) pairs: known valid values, known invalid ones, and random text (validity unknown)."""
    options = [st.sampled_from(valid).map(lambda v: (v, True)), st.sampled_from(invalid).map(lambda v: (v, False))]
    if junk:
        options.append(st.text(max_size=12).map(lambda v: (v, None)))
    return st.one_of(*options)


FLAGS = {
    "--seeds": valued(["0", "1", "0,1", "3,2", " 4 "], ["a", "1.5", "0,0", "", ",", "nan", "1e400", "0,x"]),
    "--fractions": valued(["1", "1.0", "0.5,1.0", "0.75"], ["0", "1.5", "-1", "abc", "nan", "inf", "1,1.0"]),
    "--epochs": valued(["1", "3"], ["0", "-1", "abc", "1.5", ""]),
    "--batch-size": valued(["1", "8", "64"], ["0", "-4", "x", "2.5"]),
    "--lr": valued(["0.001", "2e-3", "1"], ["0", "-1", "nan", "inf", "abc", ""]),
    "--xai-samples": valued(["1", "12"], ["0", "-1", "x"]),
    "--method-opt": valued(["hinton.T=2", "hinton.alpha=0.5", "fitnets.beta=10"],
                           ["hinton.T", "hinton.T=hot", "hinton.tau=1", "nosuch.T=1", "hinton.T=-2",
                            "hinton.T=nan", ".T=1", "hinton.=1", "hinton.alpha=[1"]),
    "--dataset-opt": valued(["synthetic.n_train=64", "synthetic.image_size=32"],
                            ["synthetic", "synthetic.colour=1", "nosuch.n_train=1", "synthetic.image_size=0",
                             "synthetic.n_train=abc", "synthetic.n_test=2", "=1"]),
    "--methods": valued(["hinton", "hinton,fitnets", "fitnets", "", "at"],
                        ["hintn", "hinton,hinton", "nosuch", "hinton,,hinton"], junk=False),
    "--students": valued(["smallcnn", "tinycnn", "smallcnn,tinycnn"],
                         ["resnet1", "smallcnn,smallcnn", "no_such_model"], junk=False),
    "--plugin-opt": valued(["mlflow.tracking_uri=file:./mlruns", "x.y=1"], ["mlflow", "mlflow.uri", ".a=1"]),
    # @NAME: a file made by the `checkpoints` fixture
    "--teacher-checkpoint": valued(["@state_dict", "@wrapped"], ["@tensor", "@list", "@bytes", "@empty", "@ints",
                                                                 "@other_classes", "@missing"], junk=False),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Teacher checkpoints for the tiny run's tinycnn teacher: two that fit, the rest not state dicts or not fitting."""
    import random

    import torch

    from kdbench.builtins.datasets import synthetic
    from kdbench.distill.models import create_model
    from kdbench.plugins import load_plugins

    info = synthetic(n_train=96, n_val=48, n_test=48).info
    models = load_plugins().models
    state = create_model("tinycnn", models, num_classes=info.num_classes, in_chans=info.in_chans,
                         image_size=info.image_size).state_dict()
    other = create_model("tinycnn", models, num_classes=info.num_classes + 1, in_chans=info.in_chans,
                         image_size=info.image_size).state_dict()
    folder = tmp_path_factory.mktemp("checkpoints")
    for name, obj in {"state_dict": state, "wrapped": {"state_dict": state, "epoch": 3}, "tensor": torch.zeros(3),
                      "list": list(state.values()), "ints": {k: 1 for k in state}, "other_classes": other}.items():
        torch.save(obj, folder / f"{name}.pt")
    (folder / "bytes.pt").write_bytes(random.Random(0).randbytes(256))
    (folder / "empty.pt").write_bytes(b"")
    return folder


@FUZZ
@given(flags=st.lists(st.sampled_from(sorted(FLAGS)), unique=True, max_size=4).flatmap(
    lambda chosen: st.fixed_dictionaries({flag: FLAGS[flag] for flag in chosen})))
@example(flags={"--seeds": ("\n", None)})
@example(flags={"--lr": ("1e400", False), "--seeds": ("0", True)})
@example(flags={"--method-opt": ("hinton.T=[1", False)})
@example(flags={"--teacher-checkpoint": ("@tensor", False)})
@example(flags={"--teacher-checkpoint": ("@wrapped", True)})
def test_cli_flags_are_run_or_refused_in_one_line(flags, tmp_path_factory, capsys, checks_only, checkpoints):
    argv = [*BASE, "--out", str(tmp_path_factory.mktemp("out"))]
    for flag, (value, _) in flags.items():
        value = str(checkpoints / f"{value[1:]}.pt") if flag == "--teacher-checkpoint" else value
        argv.append(f"{flag}={value}")  # `=`: a value that starts with '-' is the flag's value
    validity = [v for _, v in flags.values()]
    expected = False if False in validity else None if None in validity else True
    code, err = call(argv, capsys)
    assert_promise(code, err, expected)


# -- (b) benchmark files -------------------------------------------------------------------
#: The real settings of [benchmark] and the Python type each takes.
SETTINGS = {"name": str, "datasets": [str], "teachers": [str], "students": [str], "methods": [str],
            "explainers": [str], "seeds": [int], "fractions": [float], "epochs": int, "teacher_epochs": int,
            "batch_size": int, "lr": float, "device": str, "baseline": bool, "teacher_checkpoint": str,
            "teacher_pretrained": bool, "data_root": str, "augment": bool, "amp": bool, "xai_samples": int,
            "xai_profile": str, "featuremap_figures": bool}

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=10)
scalars = st.one_of(st.booleans(), st.integers(-5, 10**20), st.floats(allow_nan=True, allow_infinity=True),
                    text, st.dates(), st.sampled_from(["hinton", "synthetic", "smallcnn", "0", "1", "cpu", "full"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=2),
                      max_leaves=5)
benchmark_tables = st.dictionaries(st.sampled_from(sorted(SETTINGS)) | text, values, max_size=4)
NAMES = ["synthetic", "tinycnn", "smallcnn", "hinton", "fitnets", "scratch", "gradcam", "random"]


def typed(kind):
    """Values of the right type for a setting, in range or not."""
    if isinstance(kind, list):
        return st.lists(typed(kind[0]) if kind[0] is not str else st.sampled_from(NAMES) | text, max_size=3)
    return {str: st.sampled_from(["cpu", "auto", "cuda", "default", "full", ""]) | text, bool: st.booleans(),
            int: st.integers(-2, 100), float: st.sampled_from([2e-3, 1.0, 0.5, 0.0, -1.0, 1e-300]) | st.floats()}[kind]


well_typed = st.fixed_dictionaries({}, optional={k: typed(v) for k, v in SETTINGS.items()})
documents = st.one_of(
    well_typed.map(lambda d: {"benchmark": d}),
    well_typed.map(lambda d: {"benchmark": d}),
    st.fixed_dictionaries({"benchmark": benchmark_tables}),
    st.dictionaries(st.sampled_from(["benchmark", "datasets", "methods", "plugins", "plugin_settings"]) | text,
                    values | benchmark_tables, max_size=3),
)


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {toml_value(x)}" for k, x in v.items()) + "}"
    return v.isoformat()  # a date


def to_toml(doc: dict) -> str:
    return "".join(f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}\n" for k, v in doc.items())


def type_fits(value, kind) -> bool:
    if isinstance(kind, list):  # a comma-separated string is a list, as on the CLI: seeds = "0,1"
        return isinstance(value, str) or isinstance(value, list) and all(type_fits(v, kind[0]) for v in value)
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()) or isinstance(value, str)
    if kind is float:
        return isinstance(value, (int, float, str)) and not isinstance(value, bool)
    return isinstance(value, str)


def known_defect(doc) -> bool:
    """A document kdbench must refuse: an unknown key, a setting of the wrong type, a table of the wrong shape."""
    if set(doc) - {"benchmark", "datasets", "methods", "plugins"}:
        return True
    if any(not isinstance(doc.get(k, {}), dict) for k in ("benchmark", "datasets", "methods", "plugins")):
        return True
    if any(not isinstance(v, dict) for k in ("datasets", "methods", "plugins") for v in doc.get(k, {}).values()):
        return True
    return any(k not in SETTINGS or not type_fits(v, SETTINGS[k]) for k, v in doc.get("benchmark", {}).items())


@FUZZ
@given(content=st.one_of(documents.map(lambda d: to_toml(d).encode()), st.binary(max_size=200)))
@example(content=b"\xff\xfe[benchmark]\n")
@example(content=b'[benchmark]\nseeds = [1e400]\n')
@example(content=b"[benchmark]\nplugin_settings = 5\n")
@example(content=b"benchmark = []\n")
def test_benchmark_files_are_run_or_refused_in_one_line(content, tmp_path_factory, capsys, checks_only):
    folder = tmp_path_factory.mktemp("bench")
    path = folder / "bench.toml"
    path.write_bytes(content)
    try:
        doc = tomllib.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        expected = False
    else:
        expected = False if known_defect(doc) else None  # type-correct values may still be out of range
    code, err = call([*BASE, "--config", str(path), "--out", str(folder / "out")], capsys)
    assert_promise(code, err, expected)


# -- (c) runs.jsonl ------------------------------------------------------------------------
TEMPLATES = [
    {"kind": "predictive", "dataset": "synthetic", "teacher": "tinycnn", "student": "tinycnn", "method": "teacher",
     "fraction": 1.0, "explainer": None, "status": "ok", "error": None, "epochs": 2, "method_options": {},
     "device": "cpu", "timestamp": "2026-11-22T07:39:24+00:00", "kdbench_version": "0.1.0",
     "torch_version": "2.14.1", "accuracy": 0.9, "auc": 0.95, "f1": 0.88, "params": 72499, "flops": 19759488,
     "latency_ms": 0.4, "train_seconds": 4.5, "teacher_cached": False, "checkpoint": "/c/teachers/a.pt"},
    {"kind": "predictive", "dataset": "synthetic", "teacher": "tinycnn", "student": "smallcnn", "method": "hinton",
     "fraction": 0.5, "explainer": None, "status": "ok", "error": None, "epochs": 1, "method_options": {"T": 2.0},
     "device": "cpu", "timestamp": "2026-11-22T07:39:29+00:00", "kdbench_version": "0.1.0", "accuracy": 0.5,
     "auc": None, "f1": 0.4, "params": 16851, "flops": 12681408, "latency_ms": 0.3, "train_seconds": 2.0,
     "best_epoch": 1, "train_images": 48},
    {"kind": "predictive", "dataset": "synthetic", "teacher": "tinycnn", "student": "smallcnn", "method": "dkd",
     "fraction": 1.0, "explainer": None, "status": "failed", "error": "ConfigError: dkd needs at least 3 classes",
     "epochs": 1, "method_options": {}, "device": "cpu", "timestamp": "2026-11-22T07:39:31+00:00"},
    {"kind": "explanation", "dataset": "synthetic", "teacher": "tinycnn", "student": "smallcnn", "method": "hinton",
     "fraction": 0.5, "epochs": 1, "explainer": "gradcam", "xai_samples": 8, "status": "ok", "error": None,
     "pointing_game": 0.25, "sparseness": 0.43, "explain_ms_per_image": 8.5, "xai_notes": ""},
]

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | text,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
                           max_leaves=6)


#: Values of the wrong type for columns of the schema (docs/results-schema.md).
WRONG = {"status": [None, 1, [], {}], "config_hash": [None, 7, ["h"]], "dataset": [None, 3, []],
         "seed": ["0", 1.5, True, None, []], "fraction": ["1.0", True, None, {}],
         "method_options": ["T=2", 5, []], "dataset_options": ["n_train=96", 1, []],
         "accuracy": ["high", True, [], {}]}


def broken_row(template, how, pick):
    """A row kdbench did not write: a required column removed, or a known column of the wrong type."""
    row = dict(template, config_hash="broken", seed=0)
    if how == "drop":
        del row[pick]
    else:
        row[how] = WRONG[how][pick % len(WRONG[how])]
    return row


garbage = st.one_of(
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b" ")),
    json_values.filter(lambda v: not (isinstance(v, dict) and "status" in v and "config_hash" in v))
               .map(lambda v: json.dumps(v).encode()),
    st.builds(broken_row, st.sampled_from(TEMPLATES), st.just("drop"), st.sampled_from(["status", "config_hash"]))
      .map(lambda r: json.dumps(r).encode()),
    st.builds(broken_row, st.sampled_from(TEMPLATES), st.sampled_from(sorted(WRONG)), st.integers(0, 4))
      .map(lambda r: json.dumps(r).encode()),
)
line_plan = st.lists(st.one_of(st.sampled_from(range(len(TEMPLATES))).map(lambda i: ("row", i)),
                               garbage.map(lambda g: ("garbage", g))), max_size=14)


@FUZZ
@given(plan=line_plan)
@example(plan=[("row", 0), ("garbage", b"[" * 50_000), ("row", 1)])
@example(plan=[("garbage", b"\xff\xfe"), ("garbage", b"{}")])
def test_runs_jsonl_keeps_exactly_the_valid_rows(plan, tmp_path_factory, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    folder = tmp_path_factory.mktemp("runs")
    lines, rows, bad = [], [], 0
    for i, (what, item) in enumerate(plan):
        if what == "row":
            row = dict(TEMPLATES[item], seed=i % 3, config_hash=f"h{i:03d}")
            rows.append(row)
            lines.append(json.dumps(row).encode())
        else:
            lines.append(item)
            bad += bool(item.strip())
    data = b"\n".join(lines) + (b"\n" if lines else b"")
    (folder / "runs.jsonl").write_bytes(data)

    got, warnings = read_rows(folder / "runs.jsonl")
    assert [r["config_hash"] for r in got] == [r["config_hash"] for r in rows]
    assert got == rows and len(warnings) == bad

    code, err = call(["leaderboard", str(folder), "--no-plots", "--format", "md,json"], capsys)
    assert_promise(code, err, valid=bool(rows))
    assert (folder / "runs.jsonl").read_bytes() == data  # never rewritten
