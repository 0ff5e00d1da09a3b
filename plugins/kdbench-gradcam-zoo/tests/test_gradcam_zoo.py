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


@pytest.mark.parametrize("name", list(zoo.CAMS))
def test_maps_follow_the_class_asked_about_except_eigencams(name):
    """A CAM of another class is another map (Eigen-CAM is class-agnostic by design), and no map is flat."""
    data = synthetic(n_train=8, n_val=4, n_test=8)
    explain = load_plugins().explainers.get(name).obj
    torch.manual_seed(0)
    model, x, y = TinyCNN(3, 3).eval(), data.test.x[:4], data.test.y[:4]
    a, b = explain(model, x, y), explain(model, x, (y + 1) % 3)
    assert a.flatten(1).std(1).min() > 0
    differs = (a - b).abs().max().item() > 1e-6  # Score-CAM's difference is small (~2e-4) but not zero
    assert differs == (name != "eigencam"), (a - b).abs().max().item()


def test_vision_transformer_maps_have_the_input_size():
    import timm

    vit = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, num_classes=3, depth=2).eval()
    a = load_plugins().explainers.get("gradcam++").obj(vit, torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))
    assert a.shape == (2, 1, 32, 32) and torch.isfinite(a).all()


def test_usable_in_a_kdbench_run(kdbench_tiny_run):
    rows = kdbench_tiny_run(methods=["hinton"], explainers=["gradcam++", "layercam", "random"])
    xai = [r for r in rows if r["kind"] == "explanation"]
    assert {r["explainer"] for r in xai} == {"gradcam++", "layercam", "random"}
    assert all(r["status"] == "ok" and r["pointing_game"] is not None for r in xai)
