import importlib.metadata as md

import pytest
import torch

zoo = pytest.importorskip("kdbench_gradcam_zoo")

from kdbench.builtins.datasets import synthetic  # noqa: E402
from kdbench.builtins.models import TinyCNN  # noqa: E402
from kdbench.plugins import load_plugins  # noqa: E402


def test_explainers_are_found_through_the_entry_point_with_their_distribution():
    plugins = load_plugins()
    for name in zoo.CAMS:
        comp = plugins.explainers.get(name)
        assert comp.provider == f"kdbench-gradcam-zoo {md.version('kdbench-gradcam-zoo')}"


@pytest.mark.parametrize("name", list(zoo.CAMS))
def test_maps_have_input_size_and_are_finite(name):
    data = synthetic(n_train=8, n_val=4, n_test=8)
    explain = load_plugins().explainers.get(name).obj
    a = explain(TinyCNN(3, 3).eval(), data.test.x[:4], data.test.y[:4])
    assert a.shape == (4, 1, 32, 32) and a.dtype == torch.float32 and torch.isfinite(a).all()


def test_vision_transformer_maps_use_the_token_grid():
    import timm

    vit = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, num_classes=3, depth=2).eval()
    a = load_plugins().explainers.get("gradcam++").obj(vit, torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))
    assert a.shape == (2, 1, 32, 32) and torch.isfinite(a).all()


def test_usable_in_a_kdbench_run(kdbench_tiny_run):
    rows = kdbench_tiny_run(methods=["hinton"], explainers=["gradcam++", "layercam", "random"])
    xai = [r for r in rows if r["kind"] == "explanation"]
    assert {r["explainer"] for r in xai} == {"gradcam++", "layercam", "random"}
    assert all(r["status"] == "ok" and r["pointing_game"] is not None for r in xai)
