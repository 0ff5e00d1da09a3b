"""The Ray executor on a real local Ray instance (num_cpus=2)."""

import json
import os
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from conftest import TINY_RUN  # noqa: E402

from kdbench.cli import main  # noqa: E402

PLUGIN_DIR = Path(__file__).parent / "plugins_for_ray"


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray instance for the module; workers see the test plugin through PYTHONPATH."""
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGIN_DIR), old]))
    sys.path.insert(0, str(PLUGIN_DIR))  # the driver imports it too
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    sys.path.remove(str(PLUGIN_DIR))
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


def rows_of(out):
    return [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]


def by_job(rows):
    return {(r["config_hash"], r["kind"], r["explainer"]): r for r in rows}


@pytest.mark.long
def test_ray_gives_the_same_rows_as_local_and_trains_each_teacher_once(tmp_path):
    import torch

    args = ["run", *TINY_RUN, "--methods", "hinton,fitnets", "--students", "smallcnn,tinycnn"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # Ray tasks ask for one CPU and use one thread: compare like with like
    try:
        assert main([*args, "--out", str(tmp_path / "local"), "--cache-dir", str(tmp_path / "c1")]) == 0
    finally:
        torch.set_num_threads(threads)
    assert main([*args, "--executor", "ray", "--out", str(tmp_path / "ray"), "--cache-dir", str(tmp_path / "c2")]) == 0
    local, remote = by_job(rows_of(tmp_path / "local")), by_job(rows_of(tmp_path / "ray"))
    assert local.keys() == remote.keys() and len(local) == 7  # teacher + 2 students x 3 methods
    for key, row in local.items():
        for metric in ("accuracy", "auc", "f1", "params", "flops"):
            assert remote[key][metric] == pytest.approx(row[metric], rel=1e-6, abs=1e-9), (key, metric)
    teachers = list((tmp_path / "c2" / "teachers").glob("*.pt"))
    assert len(teachers) == 1 and [r["teacher_cached"] for r in remote.values() if r["method"] == "teacher"] == [False]


def test_a_killed_worker_is_retried_and_the_run_finishes(tmp_path):
    marker = tmp_path / "first-attempt"
    code = main(["run", *TINY_RUN, "--methods", "diesonce", "--plugin", "kdb_dies_once", "--method-opt",
                 f"diesonce.marker={marker}", "--executor", "ray", "--out", str(tmp_path / "out"),
                 "--cache-dir", str(tmp_path / "c")])
    assert code == 0 and marker.exists()  # the first attempt died, the retry finished
    statuses = {r["method"]: r["status"] for r in rows_of(tmp_path / "out")}
    assert statuses == {"teacher": "ok", "scratch": "ok", "diesonce": "ok"}


def test_an_interrupted_ray_run_resumes_like_a_local_one(tmp_path):
    args = ["run", *TINY_RUN, "--methods", "hinton,fitnets", "--executor", "ray", "--out", str(tmp_path / "out"),
            "--cache-dir", str(tmp_path / "c")]
    assert main(args) == 0
    path = tmp_path / "out" / "runs.jsonl"
    full = path.read_text().splitlines()
    cut = [line for line in full if json.loads(line)["method"] != "fitnets"]
    path.write_text("\n".join(cut) + "\n" + full[-1][:20])  # fitnets lost, last line half-written
    assert main(args) == 0
    after = rows_of_lenient(path)
    assert sorted(r["method"] for r in after) == sorted(json.loads(line)["method"] for line in full)
    assert [r["method"] for r in after[len(cut):]] == ["fitnets"]  # only the missing job ran again


def rows_of_lenient(path):
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out
