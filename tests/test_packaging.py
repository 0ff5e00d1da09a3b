"""What a user gets from the package, outside a checkout: the sdist's files and the shipped benchmarks."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_sdist_carries_docs_licence_and_benchmark_definitions(tmp_path):
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path)], cwd=ROOT, check=True,
                   capture_output=True)
    (archive,) = tmp_path.glob("kdbench-*.tar.gz")
    names = {n.split("/", 1)[1] for n in tarfile.open(archive).getnames() if "/" in n}
    for required in ("LICENSE", "README.md", "docs/methods.md", "docs/errors.md", "docs/writing-plugins.md",
                     "benchmarks/synthetic-demo.toml", "benchmarks/breastmnist.toml", "kdbench/cli.py"):
        assert required in names, required


def test_a_shipped_benchmark_is_found_by_name_outside_a_checkout(tmp_path, monkeypatch):
    from kdbench.config.benchmark import load_toml
    from kdbench.report.session import resolve_config

    monkeypatch.chdir(tmp_path)  # no benchmarks/ folder here
    path = resolve_config("synthetic-demo")
    assert path.is_file() and load_toml(path).methods == ["hinton", "fitnets", "at", "dkd", "e2kd", "medtex"]
