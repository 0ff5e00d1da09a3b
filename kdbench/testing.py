"""Test helpers for plugin authors (also a pytest plugin, loaded automatically).

``run_tiny_benchmark`` runs a real ``kdbench run`` in-process on seconds-sized settings
(tiny synthetic data, tiny CNNs, one epoch) with your plugin loaded, and returns the rows
it wrote. The ``kdbench_tiny_run`` fixture wraps it with a temporary output directory
and artifact cache::

    def test_my_method_runs(kdbench_tiny_run):
        rows = kdbench_tiny_run(methods=["mykd"])
        assert [r["status"] for r in rows if r["method"] == "mykd"] == ["ok"]
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

#: Flags that make a run take seconds.
TINY_FLAGS = ["--teachers", "tinycnn", "--students", "smallcnn", "--epochs", "1", "--teacher-epochs", "2",
              "--dataset-opt", "synthetic.n_train=96", "--dataset-opt", "synthetic.n_val=48",
              "--dataset-opt", "synthetic.n_test=48", "--xai-samples", "8", "--quiet", "--explainers", ""]


def run_tiny_benchmark(out_dir: str | Path, *, methods=("hinton",), explainers=(), plugins=(), extra=(),
                       cache_dir: str | Path | None = None, expect_exit: int = 0) -> list[dict]:
    """Run ``kdbench run`` on tiny settings and return the rows of ``runs.jsonl``."""
    from kdbench.cli import main

    out_dir = Path(out_dir)
    args = ["run", "--methods", ",".join(methods), "--out", str(out_dir), *TINY_FLAGS]
    if explainers:
        args += ["--explainers", ",".join(explainers)]
    for p in plugins:
        args += ["--plugin", p]
    if cache_dir:
        args += ["--cache-dir", str(cache_dir)]
    code = main([*args, *extra])
    assert code == expect_exit, f"kdbench run exited {code}, expected {expect_exit}"
    path = out_dir / "runs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


@pytest.fixture
def kdbench_tiny_run(tmp_path):
    """``kdbench_tiny_run(methods=[...], explainers=[...], plugins=[...], extra=[...]) -> rows``."""

    def run(**kwargs):
        return run_tiny_benchmark(tmp_path / "out", cache_dir=tmp_path / "cache", **kwargs)

    return run
