"""Every benchmark definition in benchmarks/ parses and names only existing components."""

import re
from pathlib import Path

import pytest

from kdbench.config.benchmark import load_toml
from kdbench.config.preflight import validate

FILES = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.toml"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_benchmark_definition_is_valid(path, plugins):
    bench = load_toml(path)
    validate(bench, plugins)
    assert bench.seeds and bench.methods


def test_relative_paths_in_a_benchmark_file_are_relative_to_the_file(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "b.toml"
    path.write_text('[benchmark]\ndata_root = "../data"\n')
    assert Path(load_toml(path).data_root).resolve() == (tmp_path / "data").resolve()


def test_medmnist_benchmarks_point_at_the_shared_data():
    for name in ("pneumoniamnist", "breastmnist", "bloodmnist"):
        bench = load_toml(Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.toml")
        shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "medmnist"
        assert Path(bench.data_root).resolve() == shared.resolve()
        assert len(bench.seeds) >= 3 and set(bench.fractions) == {0.1, 1.0}


def _load_reproduce():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "reproduce.py"
    spec = importlib.util.spec_from_file_location("reproduce", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_run(folder, accuracies):
    import json

    folder.mkdir()
    with open(folder / "runs.jsonl", "w") as f:
        for (method, seed), acc in accuracies.items():
            f.write(json.dumps({"kind": "predictive", "status": "ok", "config_hash": f"{method}{seed}",
                                "explainer": None, "student": "s", "method": method, "fraction": 1.0,
                                "seed": seed, "accuracy": acc, "auc": acc, "f1": acc}) + "\n")


def test_reproduce_flags_only_models_outside_the_published_seed_spread(tmp_path, capsys):
    reproduce = _load_reproduce()
    published = {("scratch", 0): 0.70, ("scratch", 1): 0.80, ("scratch", 2): 0.90,
                 ("hinton", 0): 0.80, ("hinton", 1): 0.81, ("hinton", 2): 0.82}
    _write_run(tmp_path / "published", published)
    # scratch moves by 0.05 (its std is 0.1: within); hinton by 0.05 (std 0.01: outside)
    _write_run(tmp_path / "fresh", {k: v + 0.05 for k, v in published.items()})
    assert reproduce.main([str(tmp_path / "published"), str(tmp_path / "fresh")]) == 1
    out = capsys.readouterr().out
    assert "accuracy: 0/6 scores identical" in out and "1/2 models within" in out
    # and the one outside is hinton (|0.05| > its std 0.01), not scratch (|0.05| <= 0.1)
    assert re.search(r"^\|[^\n]*\bhinton\b[^\n]*\bFalse\s*\|$", out, re.M)
    assert re.search(r"^\|[^\n]*\bscratch\b[^\n]*\bTrue\s*\|$", out, re.M)
    _write_run(tmp_path / "same", published)
    assert reproduce.main([str(tmp_path / "published"), str(tmp_path / "same")]) == 0
    assert "accuracy: 6/6 scores identical" in capsys.readouterr().out


def _hashes(**settings):
    from kdbench.config.benchmark import Benchmark
    from kdbench.config.plan import make_plan

    return [job.config_hash for job in make_plan(Benchmark(**settings))]


def test_job_identity_does_not_depend_on_where_the_files_live(tmp_path):
    """A benchmark run from another checkout must find its published rows, not redo them."""
    assert _hashes(data_root="/work/shared/data") == _hashes(data_root="/elsewhere/data")
    assert _hashes(teacher_epochs=10) != _hashes(teacher_epochs=20)
    a, b, c = tmp_path / "a.pt", tmp_path / "b.pt", tmp_path / "c.pt"
    a.write_bytes(b"weights")
    b.write_bytes(b"weights")
    c.write_bytes(b"other weights")
    assert _hashes(teacher_checkpoint=str(a)) == _hashes(teacher_checkpoint=str(b))
    assert _hashes(teacher_checkpoint=str(a)) != _hashes(teacher_checkpoint=str(c))


def test_a_method_code_version_re_runs_that_method_and_keeps_every_other_job(plugins):
    """AT's stage choice changed (``AttentionTransfer.code_version``): its published rows must be
    re-run, and the other methods' rows of the same benchmarks must still be found as done."""
    from kdbench.config.benchmark import Benchmark
    from kdbench.config.plan import make_plan, method_code_versions

    versions = method_code_versions(plugins)
    assert versions["at"] == "2" and versions["hinton"] is None and versions["dkd"] is None
    bench = Benchmark(methods=["hinton", "at", "dkd"])
    now = {(j.method, j.student, j.seed, j.fraction): j.config_hash for j in make_plan(bench, None, versions)}
    before = {(j.method, j.student, j.seed, j.fraction): j.config_hash for j in make_plan(bench)}
    assert now.keys() == before.keys()
    changed = {key[0] for key in now if now[key] != before[key]}
    assert changed == {"at"}


def test_teacher_selection_script_trains_the_teacher_kdbench_trains(tmp_path, capsys):
    """benchmarks/teacher_selection.py claims to train the teacher exactly as ``kdbench run`` does; its
    accuracy-rule pick must then be the very teacher the run keeps: same epoch, same test scores."""
    import importlib.util
    import json

    from kdbench.cli import main

    toml = tmp_path / "b.toml"
    toml.write_text('[benchmark]\ndatasets = ["synthetic"]\nteachers = ["tinycnn"]\nstudents = ["smallcnn"]\n'
                    'methods = []\nexplainers = []\nseeds = [0]\nteacher_epochs = 4\nbatch_size = 32\n'
                    'device = "cpu"\n[datasets.synthetic]\nn_train = 160\nn_val = 64\nn_test = 64\n')
    spec = importlib.util.spec_from_file_location(
        "teacher_selection", Path(__file__).resolve().parents[1] / "benchmarks" / "teacher_selection.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main([str(toml), "--save", str(tmp_path / "trace.json")]) == 0
    trace = json.loads((tmp_path / "trace.json").read_text())["0"]
    pick = script.chosen(trace, "accuracy")
    assert "| accuracy" in capsys.readouterr().out

    assert main(["run", "--config", str(toml), "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "c"),
                 "--quiet"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "run" / "runs.jsonl").read_text().splitlines()]
    teacher = next(r for r in rows if r["method"] == "teacher")
    assert (teacher["accuracy"], teacher["auc"]) == (pick["test"]["accuracy"], pick["test"]["auc"])
    log = [json.loads(line) for line in next((tmp_path / "run" / "logs").glob("teacher-*.jsonl")).read_text().splitlines()]
    assert [r["val"] for r in log] == [t["val"]["scores"]["accuracy"] for t in trace]  # the same trajectory
    meta = json.loads(next((tmp_path / "c" / "teachers").glob("*.json")).read_text())
    assert meta["best_epoch"] == pick["epoch"]
