"""The Python API: ``kdbench.run(...)``, ``kdbench.load_results(...)`` and ``kdbench.api`` for plugin authors."""

from __future__ import annotations

import ast
import inspect
import re
import sys
import warnings
from pathlib import Path
from unittest import mock

import pandas as pd
import pandas.testing as pdt
import pytest
import torch

import kdbench
import kdbench.api as api
from kdbench.errors import ConfigError, KdbenchError

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "plugins" / "kdbench-plugin-template"
GUIDE = ROOT / "docs" / "writing-plugins.md"

#: TINY_RUN (tests/conftest.py) as keyword arguments: tinycnn teacher, smallcnn student, 96 images, 1 epoch.
TINY = dict(teachers="tinycnn", students=["smallcnn"], epochs=1, teacher_epochs=2, explainers=[],
            dataset_options={"synthetic": {"n_train": 96, "n_val": 48, "n_test": 48}})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One tiny run through the Python API, with the template plugin loaded as a module (seconds)."""
    out, cache = tmp_path_factory.mktemp("out"), tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(TEMPLATE))
        res = kdbench.run(methods=("hinton", "logitmatch"), plugins=["kdbench_logitmatch"], out=out,
                          cache_dir=cache, **TINY)
    return res, out, cache


# -- kdbench.run -----------------------------------------------------------------------------
def test_run_returns_every_row_as_a_dataframe(tiny):
    res, out, _ = tiny
    assert isinstance(res, api.Results) and res.out_dir == out
    rows = res.rows
    assert isinstance(rows, pd.DataFrame)
    assert list(rows["method"]) == ["teacher", "scratch", "hinton", "logitmatch"]
    assert set(rows["status"]) == {"ok"} and set(rows["kind"]) == {"predictive"}
    assert pd.api.types.is_float_dtype(rows["accuracy"]) and rows["accuracy"].between(0, 1).all()
    assert rows["config_hash"].is_unique
    assert res.failed.empty and list(res.failed.columns) == list(rows.columns)
    assert res.summary.failed == 0 and res.summary.teachers_trained == 1 and len(res.summary.rows) == 4


def test_run_returns_the_tables_and_writes_what_the_command_writes(tiny):
    res, out, _ = tiny
    assert set(res.tables) == {"predictive"}  # no explainers, one fraction
    table = res.tables["predictive"]
    assert res.predictive is table and res.explanations is None
    assert list(table["method"]) == ["teacher", "scratch", "hinton", "logitmatch"]
    assert {"accuracy_mean", "accuracy_std", "n", "avg_rank"} <= set(table.columns)
    for name in ("runs.jsonl", "leaderboard.md", "leaderboard_predictive.csv", "summary.json",
                 "tradeoff_synthetic.png"):
        assert (out / name).is_file(), name
    assert out / "leaderboard.md" in res.paths
    assert "logitmatch" in (out / "leaderboard.md").read_text()


def test_results_repr_gives_one_line_per_table(tiny):
    res, out, _ = tiny
    text = repr(res)
    lines = text.splitlines()
    assert lines[0] == f"Results({str(out)!r}): 4 rows (4 ok)"
    assert lines[1] == f"  tables['predictive']: 4 rows x {res.predictive.shape[1]} columns"
    assert len(lines) == 2


def test_a_second_run_into_the_same_folder_resumes(tiny):
    res, out, cache = tiny
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(TEMPLATE))
        again = kdbench.run(methods="hinton,logitmatch", plugins="kdbench_logitmatch", out=str(out),
                            cache_dir=cache, **TINY)
    assert again.summary.skipped == 3 and again.summary.rows == []  # the student jobs; the teacher is loaded
    pdt.assert_frame_equal(again.rows, res.rows)


def test_a_dry_run_returns_the_plan_and_writes_nothing(tiny, tmp_path):
    res, out, cache = tiny
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(TEMPLATE))
        done = kdbench.run(methods=["hinton", "logitmatch"], plugins=["kdbench_logitmatch"], out=out,
                           cache_dir=cache, dry_run=True, **TINY)
        fresh = kdbench.run(methods=["hinton"], seeds=[0, 1], out=tmp_path / "new", cache_dir=cache, dry_run=True,
                            **TINY)
    assert list(done["method"]) == ["scratch", "hinton", "logitmatch"] and set(done["state"]) == {"done"}
    students = res.rows[res.rows["method"] != "teacher"]
    assert set(done["config_hash"]) == set(students["config_hash"])
    assert sorted(zip(fresh["method"], fresh["seed"])) == [("hinton", 0), ("hinton", 1), ("scratch", 0), ("scratch", 1)]
    assert set(fresh["state"]) == {"to run"}
    assert list(fresh["teacher_cached"]) == list(fresh["seed"] == 0)  # seed 0's teacher is in the store
    assert not (tmp_path / "new").exists()


# -- kdbench.load_results --------------------------------------------------------------------
def test_load_results_reads_the_same_rows_and_tables(tiny):
    res, out, _ = tiny
    for path in (out, str(out / "runs.jsonl")):
        loaded = kdbench.load_results(path)
        assert loaded.out_dir == out and loaded.summary is None and loaded.warnings == []
        assert set(loaded.rows["config_hash"]) == set(res.rows["config_hash"])
        pdt.assert_frame_equal(loaded.rows, res.rows)
        assert set(loaded.tables) == set(res.tables)
        for name, frame in res.tables.items():
            pdt.assert_frame_equal(loaded.tables[name], frame)
    assert api.load_results is kdbench.load_results


def test_load_results_keeps_failed_rows_apart(tmp_path, tiny):
    _, out, _ = tiny
    lines = (out / "runs.jsonl").read_text().splitlines()
    failed = lines[-1].replace('"status": "ok"', '"status": "failed"').replace('"error": null', '"error": "boom"')
    (tmp_path / "runs.jsonl").write_text("\n".join(["not json"] + lines[:-1] + [failed]) + "\n")
    loaded = kdbench.load_results(tmp_path)
    assert list(loaded.failed["method"]) == ["logitmatch"] and list(loaded.failed["error"]) == ["boom"]
    assert "logitmatch" not in set(loaded.predictive["method"])
    assert len(loaded.warnings) == 1 and "not JSON" in loaded.warnings[0]
    assert "1 failed" in repr(loaded) and "1 warning (see .warnings)" in repr(loaded)


@pytest.mark.parametrize("make", [lambda p: p / "missing", lambda p: p, lambda p: p / "runs.jsonl"])
def test_load_results_without_runs_jsonl_is_one_clear_line(tmp_path, make):
    path = make(tmp_path)
    if path.name == "runs.jsonl":
        path.write_text("garbage\n{}\n")
    with pytest.raises(KdbenchError) as err:
        kdbench.load_results(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    assert ("no runs.jsonl there" in message) if path.name != "runs.jsonl" else ("is a result row" in message)


def test_load_results_of_an_empty_runs_jsonl_is_empty(tmp_path):
    (tmp_path / "runs.jsonl").write_text("")
    res = kdbench.load_results(tmp_path)
    assert res.rows.empty and res.tables == {} and res.failed.empty and res.predictive is None
    assert "0 rows" in repr(res) and "no tables" in repr(res)


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize("options, match", [
    (dict(methods=["hintn"]), "unknown method 'hintn'; did you mean 'hinton'?"),
    (dict(epochs="many"), "epochs must be a number"),
    (dict(seeds=[0.5]), "seeds must hold int values"),
    (dict(xai_profile="fast"), "xai_profile must be one of default, full"),
    (dict(method_options={"hinton": 2}), r"method_options must map each name to a dict of its options"),
    (dict(method_options={"hinton": {"Tx": 2}}), "method hinton has no option 'Tx'"),
    (dict(dataset_options={"synthetic": {"n_trian": 5}}), "dataset synthetic has no option 'n_trian'"),
    (dict(config="no-such-benchmark"), "no such file, nor a benchmarks/no-such-benchmark.toml"),
    (dict(config="missing/bench.toml"), "does not exist"),
    (dict(executor="slurm"), "executor"),
    (dict(plugins=["no_such_module_xyz"]), "cannot import it"),
])
def test_bad_input_raises_the_cli_error_before_anything_runs(tmp_path, options, match):
    options = {**TINY, "methods": ["hinton"], "cache_dir": tmp_path / "cache", **options}
    with pytest.raises(KdbenchError, match=match):
        kdbench.run(out=tmp_path / "out", **options)
    assert not (tmp_path / "out" / "runs.jsonl").exists()


def test_run_takes_every_option_of_kdbench_run():
    from argparse import _SubParsersAction

    from kdbench.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, _SubParsersAction))
    flags = {a.dest for a in sub.choices["run"]._actions if a.dest != "help"}
    renamed = {"plugin": "plugins", "method_opt": "method_options", "dataset_opt": "dataset_options",
               "plugin_opt": "plugin_settings", "no_baseline": "baseline"}
    keywords = set(inspect.signature(api.run).parameters)
    assert {renamed.get(f, f) for f in flags} - keywords == set()
    assert inspect.signature(kdbench.run) == inspect.signature(api.run)  # help(kdbench.run) shows them


def test_options_are_read_as_the_command_line_reads_flags(tmp_path):
    import numpy as np

    from kdbench.report.session import benchmark_from_options

    toml = tmp_path / "mine.toml"
    toml.write_text('[benchmark]\nmethods = ["fitnets"]\nepochs = 3\n[methods.hinton]\nalpha = 0.5\n')
    bench = benchmark_from_options(toml, methods=("hinton", "fitnets"), seeds=np.int64(2), fractions="0.5, 1",
                                   lr=np.float32(0.01), data_root=tmp_path, baseline=False,
                                   method_options={"hinton": {"T": 2}})
    assert bench.name == "mine" and bench.epochs == 3  # the file's value where none is given
    assert bench.methods == ["hinton", "fitnets"] and bench.seeds == [2] and bench.fractions == [0.5, 1.0]
    assert bench.data_root == str(tmp_path) and bench.baseline is False and isinstance(bench.lr, float)
    assert bench.method_options == {"hinton": {"alpha": 0.5, "T": 2}}  # merged like --method-opt
    assert benchmark_from_options("synthetic-demo").name == "synthetic-demo"  # a benchmark by name
    with pytest.raises(ConfigError, match="teachers must hold str values"):
        benchmark_from_options(teachers=[1])


# -- kdbench.run is a function and the run stage's package -----------------------------------
def test_kdbench_run_is_callable_and_still_the_package():
    import kdbench.run.lock as lock_module
    import kdbench.run.runner

    assert callable(kdbench.run) and kdbench.run.runner.Runner is not None
    assert kdbench.run.lock is lock_module and sys.modules["kdbench.run"] is kdbench.run
    with mock.patch("kdbench.run.runner.Runner") as fake:  # dotted paths through kdbench.run still resolve
        assert kdbench.run.runner.Runner is fake
    with mock.patch.object(api, "run", return_value="called") as fake:
        assert kdbench.run(methods=["hinton"]) == "called"
    fake.assert_called_once_with(methods=["hinton"])


# -- kdbench.api for plugin authors ----------------------------------------------------------
def test_api_exports_what_a_plugin_needs():
    from kdbench.data.contract import TASKS
    from kdbench.distill.losses import hard_targets, kd_loss, task_loss
    from kdbench.distill.methods.base import Distiller

    assert api.Distiller is Distiller and api.TASKS == TASKS
    assert (api.BINARY, api.MULTICLASS, api.MULTILABEL) == ("binary", "multiclass", "multilabel")
    assert (api.task_loss, api.kd_loss, api.hard_targets) == (task_loss, kd_loss, hard_targets)
    for name in ("DatasetInfo", "DatasetBundle", "Split", "standardise", "XaiMetric", "hookimpl", "API_VERSION",
                 "Explainer", "check_explainer", "NotApplicableError", "require", "run", "load_results", "Results"):
        assert name in api.__all__ and getattr(api, name) is not None, name


def _tiny_model():
    from kdbench.builtins.models import TinyCNN

    torch.manual_seed(0)
    return TinyCNN(3, 3, widths=(8, 16)).eval()


def test_builtin_explainers_meet_the_contract_check_explainer_states():
    from kdbench.explain.explainers import gradcam, random_map, saliency

    model, x = _tiny_model(), torch.randn(4, 3, 32, 32)
    target = torch.tensor([0, 1, 2, 0])
    for explain in (gradcam, saliency, random_map):
        maps = api.check_explainer(explain, model, x, target)
        assert maps.shape == (4, 1, 32, 32) and maps.dtype == torch.float32


@pytest.mark.parametrize("explain, match", [
    (lambda m, x, t: torch.rand(len(x), 1, 8, 8), r"returned \(4, 1, 8, 8\), expected a tensor of shape"),
    (lambda m, x, t: torch.ones(len(x), 1, *x.shape[-2:], dtype=torch.long), "return a float tensor"),
    (lambda m, x, t: torch.full((len(x), 1, *x.shape[-2:]), float("nan")), "NaN"),
    (lambda m, x, t: torch.rand(len(x), 1, *x.shape[-2:]), "must be a pure function"),
    (lambda m, x, t: (m.train(), x[:, :1])[1], "left the model in train mode"),
    (lambda m, x, t: (torch.nn.init.zeros_(next(m.parameters())), x[:, :1].detach())[1], "changed the model"),
])
def test_check_explainer_names_the_rule_broken(explain, match):
    with torch.no_grad():
        x = torch.randn(4, 3, 32, 32)
    with pytest.raises(KdbenchError, match=match):
        api.check_explainer(explain, _tiny_model(), x, torch.zeros(4, dtype=torch.long))


# -- the template and the guide use kdbench.api only -----------------------------------------
def _kdbench_imports(source: str) -> list[str]:
    """Every import of a kdbench module other than kdbench.api in ``source``."""
    wrong = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "kdbench":
            if node.module != "kdbench.api":
                wrong.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Import):
            wrong += [f"import {a.name}" for a in node.names if a.name.split(".")[0] == "kdbench"
                      and a.name != "kdbench.api"]
    return wrong


def test_the_template_and_the_guide_import_only_from_kdbench_api():
    sources = {str(p.relative_to(ROOT)): p.read_text() for p in TEMPLATE.rglob("*.py")
               if "build" not in p.relative_to(TEMPLATE).parts}
    assert sources, "the template has no Python files"
    guide = GUIDE.read_text()
    blocks = re.findall(r"```python\n(.*?)```", guide, flags=re.DOTALL)
    assert len(blocks) >= 3, "the guide's examples are ```python blocks"
    sources.update({f"{GUIDE.name} block {i}": b for i, b in enumerate(blocks)})
    wrong = {where: found for where, src in sources.items() if (found := _kdbench_imports(src))}
    assert not wrong, wrong
    # the prose too: every `from kdbench... import` / `import kdbench...` the guide shows names kdbench.api
    shown = re.findall(r"(?:from|import)\s+(kdbench[\w.]*)", guide)
    assert shown and set(shown) == {"kdbench.api"}, sorted(set(shown))


def test_the_guide_states_the_explainer_contract():
    guide = GUIDE.read_text()
    section = guide[guide.index("## The explainer contract"):]
    section = section[:section.index("\n## ", 1)]
    for words in ("target", "eval mode", "multilabel", "(B, 1, H, W)", "normalis", "abs", "sign", "Quantus",
                  "MaxSensitivity", "MPRT", "RandomLogit", "pure function", "batch size", "NotApplicableError",
                  "check_explainer"):
        assert words in section, words
    for words in ("--method-opt", "defaults", "--dataset-opt", "--plugin-opt", "on_run_start", "method_options"):
        assert words in guide, words


def test_run_warns_and_keeps_the_warnings(tmp_path, tiny):
    """A plugin that fails to load is a warning, as on the command line; the run still happens."""
    _, out, cache = tiny
    bad = tmp_path / "kdbench_bad_observer.py"
    bad.write_text("from kdbench.api import hookimpl\n\n@hookimpl\ndef on_run_end(out_dir, paths):\n"
                   "    raise RuntimeError('observer down')\n")
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mp.syspath_prepend(str(tmp_path))
        mp.syspath_prepend(str(TEMPLATE))
        res = kdbench.run(methods=["hinton", "logitmatch"], plugins=["kdbench_logitmatch", "kdbench_bad_observer"],
                          out=out, cache_dir=cache, **TINY)
    assert any("observer down" in w for w in res.warnings)
    assert any("observer down" in str(w.message) for w in caught)
