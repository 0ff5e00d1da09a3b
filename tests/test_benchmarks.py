"""Every benchmark definition in benchmarks/ parses and names only existing components."""

from pathlib import Path

import pytest

from kdbench.config import load_toml
from kdbench.preflight import validate

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
