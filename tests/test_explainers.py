"""Explainers and Quantus metrics on the synthetic data, whose masks are exact."""


import numpy as np
import pytest
import torch

from kdbench.builtins.models import TinyCNN
from kdbench.distill.methods.medtex import MedTex
from kdbench.errors import NotApplicableError
from kdbench.explain.explainers import (
    featuremaps,
    gradcam,
    integrated_gradients,
    medtex_mask,
    occlusion,
    random_map,
    saliency,
)
from kdbench.explain.metrics import (
    DEFAULT_METRICS,
    FULL_METRICS,
    _pixels_in_channels,
    curve_steps,
    evaluate_metric,
)
from kdbench.explain.scoring import explain_model, xai_subset

ALL = [gradcam, saliency, integrated_gradients, occlusion, random_map, featuremaps]
BY_NAME = {m.name: m for m in DEFAULT_METRICS + FULL_METRICS}


@pytest.fixture(scope="module")
def trained(trained_smallcnn):
    return trained_smallcnn


@pytest.mark.parametrize("explain", ALL, ids=lambda f: f.__name__)
def test_maps_have_input_size_and_are_finite(explain, tiny_data):
    model = TinyCNN(3, 3).eval()
    x, y = tiny_data.test.x[:6], tiny_data.test.y[:6]
    a = explain(model, x, y)
    assert a.shape == (6, 1, 32, 32) and a.dtype == torch.float32
    assert torch.isfinite(a).all()


def test_random_explainer_is_deterministic_for_the_same_images(tiny_data):
    x = tiny_data.test.x[:4]
    noise = random_map(None, x, None)
    assert torch.equal(noise, random_map(None, x, None))
    # and it is noise: uniform on [0, 1) (std 1/sqrt(12)), different per image and for other images
    assert abs(noise.mean().item() - 0.5) < 0.05 and abs(noise.std().item() - 12 ** -0.5) < 0.03
    assert not torch.equal(noise[0], noise[1]) and not torch.equal(noise, random_map(None, tiny_data.test.x[4:8], None))


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
    assert len(a) == len(np.unique(a)) == 12 and a.max() < len(tiny_data.test.y)  # 12 distinct test images
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
    assert np.isnan(value[:3]).all() and np.isfinite(value[3:]).all()
    all_empty, why = evaluate_metric(BY_NAME["pointing_game"], model, x, y, a, np.zeros_like(masks))
    assert np.isnan(all_empty).all() and why == "every ground-truth mask is empty"


def test_constant_maps_and_empty_masks_together_leave_the_other_images_scores_as_they_were(tiny_data):
    """Images without a mask are left out, constant maps are scored on a stand-in: both must land on the right images."""
    model = TinyCNN(3, 3).eval()
    x, y, a = _inputs(tiny_data)
    masks = tiny_data.test.masks[:8].numpy().copy()
    masks[:3] = 0
    flat = a.copy()
    flat[[2, 5]] = 0.0  # one constant map on a maskless image, one on an image with a mask
    for name in ("attribution_localisation", "topk_intersection", "relevance_rank_accuracy"):
        plain, _ = evaluate_metric(BY_NAME[name], model, x, y, a, masks)
        mixed, note = evaluate_metric(BY_NAME[name], model, x, y, flat, masks)
        assert note == "2 constant maps skipped; 3 images with empty masks skipped"
        assert np.isnan(mixed[[0, 1, 2, 5]]).all()
        np.testing.assert_array_equal(mixed[[3, 4, 6, 7]], plain[[3, 4, 6, 7]])
        assert np.isfinite(plain[[3, 4, 6, 7]]).all()


def test_localisation_without_masks_is_nan_with_a_reason(tiny_data):
    x, y, a = _inputs(tiny_data)
    value, why = evaluate_metric(BY_NAME["topk_intersection"], TinyCNN(3, 3).eval(), x, y, a, None)
    assert np.isnan(value).all() and why == "no ground-truth masks"


def _random_explain(model, inputs, targets, **kwargs):
    return np.random.default_rng(1).random((len(inputs), 1, 32, 32)).astype(np.float32)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", ["road", "irof", "infidelity", "monotonicity_correlation", "efficient_mprt"])
def test_full_profile_metrics_give_one_finite_score_per_image_on_gray_and_rgb(name, channels, tiny_data):
    """Quantus 0.6.0's ROAD and IROF crash on RGB input and ROAD returns a curve; kdbench adapts both."""
    x, y, a = _inputs(tiny_data, channels=channels)
    model = TinyCNN(3, channels).eval()
    value, why = evaluate_metric(BY_NAME[name], model, x, y, a, None, explain_func=_random_explain, num_classes=3)
    assert value.shape == (8,) and np.isfinite(value).all(), why


def test_infidelity_does_not_depend_on_the_scale_of_the_map(tiny_data):
    x, y, a = _inputs(tiny_data)
    model = TinyCNN(3, 3).eval()
    scores = [evaluate_metric(BY_NAME["infidelity"], model, x, y, a * k, None)[0] for k in (1e-3, 1.0, 1e3)]
    np.testing.assert_allclose(scores[0], scores[1], rtol=1e-3)
    np.testing.assert_allclose(scores[2], scores[1], rtol=1e-3)
    assert ((0 <= scores[1]) & (scores[1] <= 1)).all()


def test_faithfulness_correlation_perturbs_every_channel():
    metric = BY_NAME["faithfulness_correlation"]
    assert metric.perturbs_input and metric.make(32, 3, 3).subset_size == 3 * 32 * 32 // 16


def test_constant_zero_or_non_finite_maps_are_nan_with_a_reason(tiny_data):
    model = TinyCNN(3, 3).eval()
    x, y, a = _inputs(tiny_data)
    value, why = evaluate_metric(BY_NAME["sparseness"], model, x, y, np.zeros_like(a), None)
    assert np.isnan(value).all() and why == "every map is constant per image"
    flat = a.copy()
    flat[:2] = 0.7 + 1e-9 * np.random.default_rng(0).random(flat[:2].shape)  # constant up to float noise
    value, why = evaluate_metric(BY_NAME["pointing_game"], model, x, y, flat, tiny_data.test.masks[:8].numpy())
    assert np.isnan(value[:2]).all() and "2 constant maps skipped" in why
    a[0, 0, 0, 0] = np.nan
    assert evaluate_metric(BY_NAME["sparseness"], model, x, y, a, None)[1] == "attributions are not finite"


def test_no_weighted_localisation_variant_is_used():
    for m in DEFAULT_METRICS:
        if m.needs_masks:
            assert getattr(m.make(32, 8, 3), "weighted", False) is False


def test_metric_parameters_are_scaled_to_the_image():
    for size in (28, 32, 64):
        pf = BY_NAME["pixel_flipping"].make(size, 8, 3)
        assert (3 * size * size) % pf.features_in_step == 0 and pf.features_in_step % 3 == 0  # whole pixels
        assert BY_NAME["faithfulness_correlation"].make(size, 8, 3).subset_size < 3 * size * size
        assert BY_NAME["topk_intersection"].make(size, 8, 3).k < size * size
        assert size % BY_NAME["infidelity"].make(size, 8, 3).patch == 0


def test_gradcam_on_a_vision_transformer_uses_the_token_grid():
    import timm

    vit = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, num_classes=3, depth=2).eval()
    a = gradcam(vit, torch.randn(3, 3, 32, 32), torch.tensor([0, 1, 2]))
    assert a.shape == (3, 1, 32, 32) and torch.isfinite(a).all()
    assert (a.flatten(1).amax(1) > 0).all()  # patch tokens get gradient: a real map, not zeros


def test_gradcam_reads_the_deepest_stage_of_at_least_7x7():
    import timm

    from kdbench.distill.gradcam import gradcam_layer

    resnet = timm.create_model("resnet18", num_classes=3)
    assert gradcam_layer(resnet, torch.zeros(1, 3, 32, 32)) == ("layer1", False)  # layer2/3/4: 4x4, 2x2, 1x1
    assert gradcam_layer(resnet, torch.zeros(1, 3, 8, 8)) == ("act1", False)  # nothing is 7x7: the largest map
    mobilenet = timm.create_model("mobilenetv3_small_050", num_classes=3)
    assert gradcam_layer(mobilenet, torch.zeros(1, 3, 28, 28)) == ("blocks.0", False)
    assert gradcam_layer(resnet, torch.zeros(1, 3, 224, 224)) == ("layer4", False)  # 7x7, as Grad-CAM is used
    a = gradcam(resnet.eval(), torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))
    assert a.flatten(1).std(1).min() > 0  # a real map, not a constant


def test_featuremap_figure_is_written_per_model(tmp_path):
    from kdbench.testing import run_tiny_benchmark

    run_tiny_benchmark(tmp_path / "out", methods=["hinton"], explainers=["featuremaps"], cache_dir=tmp_path / "c",
                       extra=["--featuremap-figures"])
    figures = sorted(p.name for p in (tmp_path / "out").glob("featuremaps_*.png"))
    assert figures == ["featuremaps_synthetic_smallcnn_hinton_1.png", "featuremaps_synthetic_smallcnn_scratch_1.png",
                       "featuremaps_synthetic_tinycnn_teacher_1.png"]


def test_mprt_scores_a_model_independent_map_one_and_a_weight_dependent_map_far_lower(trained):
    """The model-parameter randomisation test (Adebayo et al. 2018) as kdbench scores it: Spearman
    correlation of each image's explanation before and after every layer is re-initialised from the
    top. An explanation that ignores the model must score 1 (the sanity check fails); Grad-CAM of a
    trained model must not."""
    from kdbench.explain.metrics import quantus_explain_func

    data, model = trained
    x, y = data.test.x[:8], data.test.y[:8]
    metric = BY_NAME["mprt"]
    assert not metric.higher_is_better
    rand = random_map(model, x, y).numpy()
    value, why = evaluate_metric(metric, model, x, y, rand, None, explain_func=quantus_explain_func(random_map),
                                 num_classes=3)
    np.testing.assert_allclose(value, 1.0, atol=1e-6, err_msg=str(why))
    cam = gradcam(model, x, y).numpy()
    value, why = evaluate_metric(metric, model, x, y, cam, None, explain_func=quantus_explain_func(gradcam),
                                 num_classes=3)
    finite = value[np.isfinite(value)]
    assert finite.size >= 4 and np.abs(finite).mean() < 0.6, (value, why)


class _ChannelMean(torch.nn.Module):
    """A model that sees only the mean over channels: a gray image and its RGB copy are one input to it."""

    def __init__(self, channels):
        super().__init__()
        self.channels = channels
        self.head = TinyCNN(3, 1).eval()

    def forward(self, x):
        return self.head(x.mean(1, keepdim=True))


@pytest.mark.parametrize("name", ["pixel_flipping", "monotonicity_correlation"])
def test_stepwise_metrics_take_16_steps_of_whole_pixels_on_gray_and_rgb(name, tiny_data):
    """Quantus steps through C*H*W values: with a step of H*W/16 values an RGB image took 48 steps."""
    torch.manual_seed(0)
    model = _ChannelMean(1).eval()
    x_gray, y, a = _inputs(tiny_data, channels=1)
    x_rgb = np.repeat(x_gray, 3, axis=1)  # the same image in three channels: the model's input is unchanged
    assert curve_steps(BY_NAME[name], 32, 3, 1) == curve_steps(BY_NAME[name], 32, 3, 3) == 16
    gray, _ = evaluate_metric(BY_NAME[name], model, x_gray, y, a, None, num_classes=3)
    rgb, _ = evaluate_metric(BY_NAME[name], model, x_rgb, y, a, None, num_classes=3)
    assert np.isfinite(gray).all()
    np.testing.assert_allclose(rgb, gray, rtol=1e-5, atol=1e-6)


def test_road_imputes_the_share_of_pixels_it_names_when_the_map_ties():
    """A Grad-CAM's zeros tie across pixels; the sort then interleaves their channels."""
    seen = []
    adapter = _pixels_in_channels(lambda arr, indices, **kw: seen.append(np.asarray(indices)) or arr)
    rng = np.random.default_rng(0)
    a = np.where(rng.random((32, 32)) < 0.6, 0.0, rng.random((32, 32)))  # 60% of the pixels exactly 0
    repeated = np.repeat(a[None], 3, axis=0).ravel()
    order = np.argsort(-repeated)  # as Quantus' ROAD orders the repeated map
    for share in (0.3, 0.5, 0.7):
        adapter(np.zeros((3, 32, 32)), order[: int(repeated.size * share)])
        pixels = seen[-1]
        assert len(pixels) == round(32 * 32 * share) and len(np.unique(pixels)) == len(pixels)
        top = np.sort(a.ravel())[::-1][len(pixels) - 1]
        assert (a.ravel()[pixels] >= top).all()  # the most relevant pixels, ties aside


def test_multilabel_localisation_scores_the_explained_labels_lesions_not_the_others():
    """An oracle map of the explained label's lesions hits; one of another present label's lesions does not."""
    from kdbench.builtins.datasets import synthetic
    from kdbench.explain.scoring import explanation_targets
    from kdbench.registry import Component

    data = synthetic(n_train=20, n_val=8, n_test=200, task="multilabel")
    model = TinyCNN(3, 3).eval()
    idx = xai_subset(data, 64)
    targets = explanation_targets(model, data.test.x[idx], data.test.y[idx], "multilabel").numpy()
    per_label = data.test.masks[idx]  # (64, 3, H, W)
    other = [next((k for k in range(3) if k != t and per_label[i, k].any()), t) for i, t in enumerate(targets)]
    assert sum(o != t for o, t in zip(other, targets)) >= 10  # images where another label's lesions are shown

    def oracle(labels):
        def explain(m, x, target):  # called on the same 64 images, in subset order
            return torch.stack([per_label[i, labels[i]] for i in range(len(x))])[:, None].float()
        return explain

    comps = [Component("explainers", "right", oracle(targets)), Component("explainers", "wrong", oracle(other))]
    rows = {r["explainer"]: r for r in explain_model(model, data, comps, [BY_NAME["pointing_game"]], 64, "cpu").rows}
    assert rows["right"]["pointing_game"] == 1.0
    shown_other = np.mean([o != t for o, t in zip(other, targets)])
    # a miss wherever another label's lesions were pointed at; a union mask had counted those as hits too
    assert rows["wrong"]["pointing_game"] == pytest.approx(1 - shown_other)
