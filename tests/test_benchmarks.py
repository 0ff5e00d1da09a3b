"""Every benchmark definition in benchmarks/ parses and names only existing components."""

from pathlib import Path

import pytest

from kdbench.config import load_toml
from kdbench.runner import validate

FILES = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.toml"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_benchmark_definition_is_valid(path, plugins):
    bench = load_toml(path)
    validate(bench, plugins)
    assert bench.seeds and bench.methods
