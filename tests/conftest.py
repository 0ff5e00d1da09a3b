"""Shared fixtures: tiny synthetic data, tiny models, an isolated artifact cache."""

from __future__ import annotations

import pytest
import torch

from kdbench.builtins.datasets import synthetic
from kdbench.builtins.models import TinyCNN
from kdbench.plugins import load_plugins


def pytest_addoption(parser):
    parser.addoption("--run-long", action="store_true",
                     help="also run the end-to-end tests marked long (minutes each on a 2-core CPU)")


def pytest_collection_modifyitems(config, items):
    """Tests marked ``long`` run with ``--run-long``; a plain ``pytest`` lists them as skipped, with the reason.

    Why: on a slow 2-core CPU (AVX2 only) the whole suite took 18 minutes, and these four
    end-to-end runs (MED-TEX's mask on exact lesion masks, SIGKILL and resume, Ctrl-C, Ray
    against local) were 5.5 of them; the CI budget is 20 minutes, install included.
    """
    if config.getoption("--run-long"):
        return
    skip = pytest.mark.skip(reason="long end-to-end test: run with pytest --run-long")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's real artifact cache."""
    monkeypatch.setenv("KDBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def plugins():
    return load_plugins()


@pytest.fixture(scope="session")
def tiny_data():
    """64/32/32 images of 32x32, three lesion classes."""
    return synthetic(n_train=64, n_val=32, n_test=32)


@pytest.fixture(scope="session")
def tiny_multilabel():
    return synthetic(n_train=64, n_val=32, n_test=32, task="multilabel")


@pytest.fixture
def tiny_pair(tiny_data):
    """A (student, teacher) pair of tiny CNNs for the tiny data."""
    info = tiny_data.info
    torch.manual_seed(0)
    return TinyCNN(info.num_classes, info.in_chans, widths=(8, 16)), TinyCNN(info.num_classes, info.in_chans)


#: Settings for end-to-end CLI runs that take seconds.
TINY_RUN = ["--teachers", "tinycnn", "--students", "smallcnn", "--epochs", "1", "--teacher-epochs", "2",
            "--dataset-opt", "synthetic.n_train=96", "--dataset-opt", "synthetic.n_val=48",
            "--dataset-opt", "synthetic.n_test=48", "--quiet", "--explainers", ""]  # no explanation scoring


@pytest.fixture(scope="session")
def trained_smallcnn():
    """(data, model): a two-stage CNN trained for 4 epochs on 600 synthetic images (about 10 s), shared."""
    from kdbench.distill.methods.scratch import Scratch
    from kdbench.distill.training import TrainConfig, fit

    data = synthetic(n_train=600, n_val=100, n_test=120)
    torch.manual_seed(0)
    model = TinyCNN(3, 3, widths=(16, 32))
    fit(Scratch(model, None, data.info), data.train, data.val, TrainConfig(epochs=4, lr=3e-3))
    return data, model.eval()


@pytest.fixture
def wide_console(monkeypatch):
    """Rich wraps at 80 columns when not on a terminal; keep each message on its line."""
    monkeypatch.setenv("COLUMNS", "300")


def one_line_error(code: int, err: str) -> str:
    """Assert the CLI's promise for bad input and return the message (warnings before it are allowed)."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("kdbench: error: "), err
    return lines[0]
