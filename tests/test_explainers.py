"""Explainers and Quantus metrics on the synthetic data, whose masks are exact."""

import math

import numpy as np
import pytest
import torch

from kdbench.builtins.datasets import synthetic
from kdbench.builtins.models import TinyCNN
from kdbench.errors import NotApplicableError
from kdbench.explain import explain_model, xai_subset
from kdbench.explainers import (featuremaps, gradcam, integrated_gradients, medtex_mask, occlusion, random_map,
                                saliency)
from kdbench.methods.medtex import MedTex
from kdbench.methods.scratch import Scratch
from kdbench.training import TrainConfig, fit
from kdbench.xai_metrics import DEFAULT_METRICS, FULL_METRICS, evaluate_metric

ALL = [gradcam, saliency, integrated_gradients, occlusion, random_map, featuremaps]
BY_NAME = {m.name: m for m in DEFAULT_METRICS + FULL_METRICS}


@pytest.fixture(scope="module")
def trained():
    """A TinyCNN trained for a few epochs on 600 synthetic images (about 10 s)."""
    data = synthetic(n_train=600, n_val=100, n_test=120)
    torch.manual_seed(0)
    model = TinyCNN(3, 3, widths=(16, 32))
    fit(Scratch(model, None, data.info), data.train, data.val, TrainConfig(epochs=4, lr=3e-3))
    return data, model.eval()


@pytest.mark.parametrize("explain", ALL, ids=lambda f: f.__name__)
def test_maps_have_input_size_and_are_finite(explain, tiny_data):
    model = TinyCNN(3, 3).eval()
    x, y = tiny_data.test.x[:6], tiny_data.test.y[:6]
    a = explain(model, x, y)
    assert a.shape == (6, 1, 32, 32) and a.dtype == torch.float32
    assert torch.isfinite(a).all()


def test_random_explainer_is_deterministic_for_the_same_images(tiny_data):
    x = tiny_data.test.x[:4]
    assert torch.equal(random_map(None, x, None), random_map(None, x, None))


def test_medtex_mask_is_not_applicable_to_other_students_and_works_for_medtex(tiny_data):
    with pytest.raises(NotApplicableError, match="only to students trained by the medtex method"):
        medtex_mask(TinyCNN(3, 3), tiny_data.test.x[:2], None)
    deployed = MedTex(TinyCNN(3, 3, widths=(8, 16)), TinyCNN(3, 3), tiny_data.info).deployable().eval()
    a = medtex_mask(deployed, tiny_data.test.x[:2], None)
    assert a.shape == (2, 1, 32, 32) and 0 <= a.min() and a.max() <= 1


def test_gradcam_hits_the_lesions_far_more_often_than_chance(trained):
    data, model = trained
    from kdbench.registry import Component

    comps = [Component("explainers", "gradcam", gradcam), Component("explainers", "random", random_map)]
    metrics = [BY_NAME["pointing_game"], BY_NAME["attribution_localisation"]]
    rows = {r["explainer"]: r for r in explain_model(model, data, comps, metrics, 48, "cpu").rows}
    g, r = rows["gradcam"], rows["random"]
    assert g["pointing_game"] > r["pointing_game"] + 0.3
    assert g["attribution_localisation"] > 2 * r["attribution_localisation"]
    assert g["explain_ms_per_image"] > 0


def test_evaluation_subset_is_fixed_stratified_and_the_same_for_every_model(tiny_data):
    a = xai_subset(tiny_data, 12)
    assert np.array_equal(a, xai_subset(tiny_data, 12))
    counts = np.bincount(tiny_data.test.y[a].numpy(), minlength=3)
    assert counts.max() - counts.min() <= 1


def _inputs(data, n=8, channels=3):
    x = data.test.x[:n].numpy()
    if channels == 1:
        x = x[:, :1]
    return x, data.test.y[:n].numpy(), np.random.default_rng(0).random((n, 1, 32, 32)).astype(np.float32)


def test_pointing_game_skips_empty_masks_instead_of_counting_them_as_hits(tiny_data):
    model = TinyCNN(3, 3).eval()
    x, y, a = _inputs(tiny_data)
    masks = tiny_data.test.masks[:8].numpy().copy()
    masks[:3] = 0
    value, note = evaluate_metric(BY_NAME["pointing_game"], model, x, y, a, masks)
    assert "3 images with empty masks skipped" in note
    all_empty, why = evaluate_metric(BY_NAME["pointing_game"], model, x, y, a, np.zeros_like(masks))
    assert math.isnan(all_empty) and why == "every ground-truth mask is empty"


def test_localisation_without_masks_is_nan_with_a_reason(tiny_data):
    x, y, a = _inputs(tiny_data)
    value, why = evaluate_metric(BY_NAME["topk_intersection"], TinyCNN(3, 3).eval(), x, y, a, None)
    assert math.isnan(value) and why == "no ground-truth masks"


@pytest.mark.parametrize("name", ["road", "irof"])
def test_road_and_irof_are_refused_on_multichannel_input(name, tiny_data):
    x, y, a = _inputs(tiny_data)
    value, why = evaluate_metric(BY_NAME[name], TinyCNN(3, 3).eval(), x, y, a, None)
    assert math.isnan(value) and "crashes on 3-channel input" in why


def test_all_zero_or_non_finite_attributions_are_nan_with_a_reason(tiny_data):
    model = TinyCNN(3, 3).eval()
    x, y, a = _inputs(tiny_data)
    assert evaluate_metric(BY_NAME["sparseness"], model, x, y, np.zeros_like(a), None)[1] == "attributions are all zero"
    a[0, 0, 0, 0] = np.nan
    assert evaluate_metric(BY_NAME["sparseness"], model, x, y, a, None)[1] == "attributions are not finite"


def test_no_weighted_localisation_variant_is_used():
    for m in DEFAULT_METRICS:
        if m.needs_masks:
            assert getattr(m.build(32, 8), "weighted", False) is False


def test_metric_parameters_are_scaled_to_the_image():
    for size in (28, 32, 64):
        pf = BY_NAME["pixel_flipping"].build(size, 8)
        assert (size * size) % pf.features_in_step == 0
        assert BY_NAME["faithfulness_correlation"].build(size, 8).subset_size < size * size
        assert BY_NAME["topk_intersection"].build(size, 8).k < size * size


def test_gradcam_on_a_vision_transformer_uses_the_token_grid():
    import timm

    vit = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, num_classes=3, depth=2).eval()
    a = gradcam(vit, torch.randn(3, 3, 32, 32), torch.tensor([0, 1, 2]))
    assert a.shape == (3, 1, 32, 32) and torch.isfinite(a).all()
    assert (a.flatten(1).amax(1) > 0).all()  # patch tokens get gradient: a real map, not zeros


def test_gradcam_reads_the_deepest_stage_that_still_has_spatial_extent():
    import timm

    from kdbench.gradcam import gradcam_layer

    resnet = timm.create_model("resnet18", num_classes=3)
    assert gradcam_layer(resnet, torch.zeros(1, 3, 32, 32)) == ("layer2", False)  # layer3/4 are 2x2 and 1x1
    assert gradcam_layer(resnet, torch.zeros(1, 3, 128, 128)) == ("layer4", False)
    a = gradcam(resnet.eval(), torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))
    assert a.flatten(1).std(1).min() > 0  # a real map, not a constant


def test_featuremap_figure_is_written_per_model(tmp_path):
    from kdbench.testing import run_tiny_benchmark

    run_tiny_benchmark(tmp_path / "out", methods=["hinton"], explainers=["featuremaps"], cache_dir=tmp_path / "c",
                       extra=["--featuremap-figures"])
    figures = sorted(p.name for p in (tmp_path / "out").glob("featuremaps_*.png"))
    assert figures == ["featuremaps_synthetic_smallcnn_hinton_1.png", "featuremaps_synthetic_smallcnn_scratch_1.png",
                       "featuremaps_synthetic_tinycnn_teacher_1.png"]
