"""Explanation-quality metrics: Quantus 0.6.0, configured so that each computes what its paper defines.

Every metric is built for the image at hand and called with ``channel_first``,
``softmax``, ``abs``, ``normalise`` and ``return_aggregate`` set explicitly. What kdbench
decides, and why (each point was measured or read in Quantus 0.6.0's code):

- **Logits, not softmax.** Every explainer explains a logit, so metrics that read the
  model read logits (``softmax=False``); on a confident model softmax outputs saturate
  and pixel flipping gave the value of a constant predictor for every explainer. IROF is
  the exception: its curve is a ratio of outputs, defined for probabilities. EfficientMPRT
  has softmax set too, which in 0.6.0 reaches only the output entropy of its extra scores
  (not computed), so it does not move its score.
- **Maps cover every channel; steps count pixels.** ROAD takes its share of a (B,1,H,W)
  map's size against a (B,C,H,W) image (1/C of the share it names), so its maps are
  repeated over the channels (FaithfulnessCorrelation broadcasts them itself; the repeat
  changes none of its numbers). PixelFlipping and Monotonicity broadcast the map and
  step through the C*H*W values, so a step of H*W/16 values was 1/(16C) of an RGB image:
  48 steps, an AUC three times a grayscale image's. Their steps are C*H*W/16 values, the
  same 16 steps of whole pixels (every channel) on any image (before 2026-12-06: 16C).
- **Per-image normalisation** (Quantus' default normalises by the batch-wide maximum).
- **Per-image constant maps score NaN**, with the reason: a flat map ranks no pixel,
  yet won the pointing game through float noise and the best max-sensitivity.
- **Settings by measurement:** 100 runs for faithfulness correlation (Quantus' default;
  at 10 the same maps scored -0.03 to 0.15 across RNG seeds); pixel flipping in steps of
  1/16 of the image; max-sensitivity on min-max normalised maps (so a near-constant map
  is not "stable" for free); deterministic perturbations run once, not repeated
  (monotonicity, infidelity); infidelity at the map's optimal scale, as the paper
  defines it (:class:`ScaleFreeInfidelity`), with a patch that divides the image side.
- **ROAD and IROF on RGB:** their perturbations crash on multi-channel images in 0.6.0
  (ROAD's imputation indexes pixels, IROF's mask has one channel); kdbench passes them
  the same Quantus perturbation functions with pixel indices and a channel-broadcast
  mask. ROAD's score is the mean accuracy over its removal curve (most relevant first),
  lower is better, per image.
- Localisation metrics skip images with an empty ground-truth mask (PointingGame counts
  those as hits); ``weighted=True`` variants are never used; ROAD gets
  ``batch_size >= n`` (otherwise it scores only the first batch).
"""

from __future__ import annotations

import hashlib
import inspect
import math
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import quantus
import torch
from quantus.functions.perturb_func import (
    baseline_replacement_by_mask,
    noisy_linear_imputation,
)

#: Seed of NumPy's global generator for every Quantus call (see :func:`evaluate_metric`).
METRIC_SEED = 0

#: Maps whose range is below this share of their largest magnitude count as constant.
FLAT_TOLERANCE = 1e-5


@dataclass(frozen=True)
class XaiMetric:
    """A Quantus metric with its direction, tier and the parameters kdbench sets.

    ``build(image_size, num_classes, channels)`` returns the Quantus metric (plugins may
    give a two-argument ``build``). ``perturbs_input``: the metric flattens the map against
    the image, so the map is repeated over the image's channels. ``softmax``: whether the
    metric reads probabilities instead of logits. ``ranked``: whether the metric enters
    the explainers' average rank; False for metrics that, measured on the synthetic set
    (tests/test_xai_meta.py, docs/explanation-metrics.md), cannot tell a trained model's
    Grad-CAM or integrated gradients both from ``random`` and from an untrained model's
    maps. They are reported, against random, but not ranked.
    """

    name: str
    build: Callable[..., object]
    higher_is_better: bool
    profile: str = "default"  # "default" or "full"
    needs_masks: bool = False
    needs_explain_func: bool = False
    single_channel_only: bool = False
    params: dict = field(default_factory=dict)
    softmax: bool = False
    perturbs_input: bool = False
    ranked: bool = True
    # the inputs it feeds the model do not depend on the map (faithfulness correlation's random
    # subsets), so every explainer of one model can share the model's outputs on them
    map_independent_inputs: bool = False

    def describe(self) -> str:
        arrow = "↑" if self.higher_is_better else "↓"
        extra = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.name} {arrow}" + (f" ({extra})" if extra else "")

    def make(self, size: int, num_classes: int, channels: int):
        """The Quantus metric for this image; a two-argument ``build`` (older plugins) gets no channel count."""
        takes_channels = len(inspect.signature(self.build).parameters) >= 3
        return self.build(size, num_classes, channels) if takes_channels else self.build(size, num_classes)


def per_image_max(a: np.ndarray, **kwargs) -> np.ndarray:
    """Divide each map by its own largest magnitude (Quantus' default uses the batch's)."""
    axes = tuple(range(1, a.ndim))
    m = np.abs(a).max(axis=axes, keepdims=True)
    return np.divide(a, m, out=np.zeros_like(a, dtype=float), where=m > 0)


def per_image_minmax(a: np.ndarray, **kwargs) -> np.ndarray:
    """Map each image's attributions onto [0, 1]; a constant map becomes NaN (it ranks nothing)."""
    axes = tuple(range(1, a.ndim))
    lo, hi = a.min(axis=axes, keepdims=True), a.max(axis=axes, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a - lo) / np.where(hi > lo, hi - lo, np.nan)


def _common(**kw):
    kw.setdefault("normalise_func", per_image_max)
    return dict(disable_warnings=True, display_progressbar=False, return_aggregate=False, **kw)


def _step(n: int, parts: int = 16) -> int:
    """The largest divisor of ``n`` that is at most ``n / parts`` (Quantus needs a divisor)."""
    target = max(1, n // parts)
    return max(d for d in range(1, target + 1) if n % d == 0)


def _patch(size: int) -> int:
    """A patch side that divides the image side, nearest to side/8 (Infidelity reshapes by it)."""
    divisors = [d for d in range(2, size // 2 + 1) if size % d == 0] or [1]
    return min(divisors, key=lambda d: (abs(d - size / 8), d))


def _pixels_in_channels(perturb):
    """Adapt a perturbation that indexes pixels to indices over (C, H, W) (maps repeated per channel).

    ``indices`` are the top values of the repeated map, most relevant first. The pixels are
    the first ``len(indices) / C`` distinct ones in that order: where the map ties across
    pixels (a Grad-CAM's zeros), the sort interleaves the channels of tied pixels, and
    taking every pixel any index touched imputed 70% of the image when ROAD asked for 50%.
    """

    def func(arr, indices, **kwargs):
        hw = arr.shape[-1] * arr.shape[-2]
        channels = arr.size // hw
        flat = np.asarray(indices).ravel() % hw
        _, first = np.unique(flat, return_index=True)
        pixels = flat[np.sort(first)][:math.ceil(flat.size / channels)]
        return perturb(arr, np.sort(pixels), **kwargs)

    return func


def _mask_over_channels(arr, mask, **kwargs):
    """IROF's one-channel segment mask, broadcast over the image's channels."""
    return baseline_replacement_by_mask(arr, np.broadcast_to(mask, arr.shape), **kwargs)


class ROADPerImage(quantus.ROAD):
    """ROAD with one score per image: mean accuracy over the removal curve (most relevant first).

    Quantus 0.6.0 returns only the batch's accuracy per percentage; the per-image mean is
    what pairs each image's score with the random baseline's.
    """

    def custom_postprocess(self, **kwargs) -> None:
        self.evaluation_scores = list(np.asarray(self.evaluation_scores[0], dtype=float).mean(axis=1))


def curve_steps(metric: XaiMetric, size: int, num_classes: int, channels: int) -> int | None:
    """How many perturbation steps a stepwise metric (pixel flipping, monotonicity) takes per image.

    Rows record it because a pixel-flipping AUC (Quantus: unit spacing) grows with the
    number of steps, so scores taken with different steps are on different scales.
    ``None`` for metrics without ``features_in_step``.
    """
    if "features_in_step" not in metric.params:
        return None
    step = getattr(metric.make(size, num_classes, channels), "features_in_step", None)
    return math.ceil(channels * size * size / step) if step else None


class _StepsOverChannels:
    """Check ``features_in_step`` against the C*H*W values a stepwise metric steps through.

    Quantus 0.6.0's PixelFlipping and MonotonicityCorrelation broadcast the map over the
    channels and step through all C*H*W values, but assert that the step divides H*W
    alone, which refuses C*H*W/16 on most RGB images. Only the check differs.
    """

    def custom_preprocess(self, x_batch: np.ndarray, **kwargs) -> None:
        quantus.helpers.asserts.assert_features_in_step(features_in_step=self.features_in_step,
                                                        input_shape=x_batch.shape[1:])


class PixelFlippingOverChannels(_StepsOverChannels, quantus.PixelFlipping):
    """Quantus' PixelFlipping with steps of whole pixels on multi-channel images (see _StepsOverChannels)."""


class MonotonicityOverChannels(_StepsOverChannels, quantus.MonotonicityCorrelation):
    """Quantus' MonotonicityCorrelation with steps of whole pixels on multi-channel images."""


def _faithfulness_correlation(size, num_classes, channels=1):
    return quantus.FaithfulnessCorrelation(nr_runs=100, subset_size=max(1, channels * size * size // 16),
                                           perturb_baseline="mean", abs=False, normalise=True, **_common())


def _pixel_flipping(size, num_classes, channels=1):
    return PixelFlippingOverChannels(features_in_step=channels * _step(size * size), perturb_baseline="mean",
                                 abs=False, normalise=True, return_auc_per_sample=True, **_common())


def _max_sensitivity(size, num_classes, channels=1):
    return quantus.MaxSensitivity(nr_samples=10, lower_bound=0.1, abs=False, normalise=True,
                                  **_common(normalise_func=per_image_minmax))


def _topk(size, num_classes, channels=1):
    return quantus.TopKIntersection(k=max(1, size * size // 20), abs=False, normalise=True, **_common())


def _mprt(size, num_classes, channels=1):
    return quantus.MPRT(layer_order="top_down", skip_layers=True, return_last_correlation=True, seed=42,
                        abs=True, normalise=True, **_common())


def _road(size, num_classes, channels=1):
    return ROADPerImage(percentages=list(range(10, 100, 20)), perturb_func=_pixels_in_channels(noisy_linear_imputation),
                        perturb_func_kwargs={"noise": 0.01}, abs=False, normalise=True, **_common())


def _irof(size, num_classes, channels=1):
    return quantus.IROF(segmentation_method="slic", perturb_func=_mask_over_channels, perturb_baseline="mean",
                        abs=False, normalise=True, **_common())


def _monotonicity(size, num_classes, channels=1):
    return MonotonicityOverChannels(nr_samples=1, features_in_step=channels * _step(size * size),
                                           perturb_baseline="mean", abs=False, normalise=True, **_common())


class ScaleFreeInfidelity:
    """Infidelity (Yeh et al. 2019) at the optimal scale of the map, as a share of the output change.

    Quantus 0.6.0 computes ``f(b) = mean_k (b * s_k - d_k)^2`` at ``b = 1`` only (``s_k``:
    the map's sum over the k-th perturbation, ``d_k``: the output change), so its value
    grows with the map's scale (the same random map gave 0.21 at x1e-3 and 2.1e11 at
    x1e3). The paper scales the explanation optimally. ``f`` is a quadratic in ``b`` and
    Quantus' patch perturbation is deterministic, so three Quantus calls (b = 1, 2, 3;
    Quantus refuses an all-negative map) give its coefficients (twice: see below), and the score is ``min_b f(b) / f(0)`` in [0, 1]: the share of
    the output change that the map cannot account for (lower is better).
    """

    def __init__(self, patch: int):
        self.patch = patch

    def __call__(self, a_batch, **kwargs):
        def quadratic(maps):
            def f(b):
                metric = quantus.Infidelity(n_perturb_samples=1, perturb_patch_sizes=[self.patch], abs=False,
                                            normalise=False, **_common())
                return np.asarray(metric(a_batch=maps * b, **kwargs), dtype=float)

            f1, f2, f3 = f(1.0), f(2.0), f(3.0)  # f(b) = square * b^2 - 2 * cross * b + energy
            square = ((f3 - f2) - (f2 - f1)) / 2  # mean(s^2)
            cross = (3 * square - (f2 - f1)) / 2  # mean(s * d)
            return square, cross, f1 - square + 2 * cross  # energy: mean(d^2) = f(0)

        # First pass at the map's own scale finds each image's optimal scale; the second pass
        # at that scale, where map sums and output changes are of one size, recovers the
        # energy without the cancellation that ruins it when the two differ by 1e6.
        square, cross, _ = quadratic(a_batch)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.abs(np.where(square > 0, cross / square, 1.0))
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0).reshape(-1, *[1] * (a_batch.ndim - 1))
        square, cross, energy = quadratic(a_batch * scale)
        with np.errstate(invalid="ignore", divide="ignore"):
            best = energy - np.where(square > 0, cross**2 / square, 0.0)
            return np.clip(best / energy, 0.0, 1.0)


def _infidelity(size, num_classes, channels=1):
    return ScaleFreeInfidelity(_patch(size))


DEFAULT_METRICS: list[XaiMetric] = [
    XaiMetric("faithfulness_correlation", _faithfulness_correlation, True, perturbs_input=True,
              params={"nr_runs": 100, "subset_size": "HWC/16", "perturb_baseline": "mean"}, ranked=False,
              map_independent_inputs=True),
    XaiMetric("pixel_flipping", _pixel_flipping, False,
              params={"features_in_step": "C*H*W/16", "perturb_baseline": "mean", "auc": True}),
    XaiMetric("max_sensitivity", _max_sensitivity, False, needs_explain_func=True,
              params={"nr_samples": 10, "lower_bound": 0.1, "normalise": "min-max"}, ranked=False),
    XaiMetric("sparseness", lambda s, c, ch=1: quantus.Sparseness(abs=True, normalise=True, **_common()), True, ranked=False),
    XaiMetric("complexity", lambda s, c, ch=1: quantus.Complexity(abs=True, normalise=True, **_common()), False, ranked=False),
    XaiMetric("pointing_game",
              lambda s, c, ch=1: quantus.PointingGame(weighted=False, abs=False, normalise=True, **_common()),
              True, needs_masks=True),
    XaiMetric("attribution_localisation",
              lambda s, c, ch=1: quantus.AttributionLocalisation(weighted=False, abs=True, normalise=True, **_common()),
              True, needs_masks=True),
    XaiMetric("topk_intersection", _topk, True, needs_masks=True, params={"k": "H*W/20"}),
    XaiMetric("relevance_rank_accuracy",
              lambda s, c, ch=1: quantus.RelevanceRankAccuracy(abs=False, normalise=True, **_common()), True,
              needs_masks=True),
    XaiMetric("mprt", _mprt, False, needs_explain_func=True,
              params={"randomisation": "all layers, top-down", "similarity": "spearman"}, ranked=False),
]

FULL_METRICS: list[XaiMetric] = [
    XaiMetric("road", _road, False, profile="full", perturbs_input=True,
              params={"percentages": "10..90 step 20", "score": "mean accuracy, MoRF"}),
    XaiMetric("irof", _irof, True, profile="full", softmax=True, params={"segments": "slic"}),
    XaiMetric("monotonicity_correlation", _monotonicity, True, profile="full",
              params={"nr_samples": 1, "features_in_step": "C*H*W/16"}, ranked=False),
    XaiMetric("infidelity", _infidelity, False, profile="full",
              params={"patch": "divisor of H nearest H/8", "score": "min over map scale / output energy"}, ranked=False),
    XaiMetric("random_logit",
              lambda s, c, ch=1: quantus.RandomLogit(num_classes=c, abs=False, normalise=True, **_common()),
              False, profile="full", needs_explain_func=True, ranked=False),
    XaiMetric("efficient_mprt", lambda s, c, ch=1: quantus.EfficientMPRT(abs=True, normalise=True, **_common()),
              True, profile="full", needs_explain_func=True, softmax=True, ranked=False),
]


def metrics_for(profile: str) -> list[XaiMetric]:
    return DEFAULT_METRICS + (FULL_METRICS if profile == "full" else [])


def flat_maps(a: np.ndarray) -> np.ndarray:
    """Which maps are constant per image (up to float noise): they rank no pixel."""
    flat = a.reshape(len(a), -1)
    spread = flat.max(1) - flat.min(1)
    return ~(spread > FLAT_TOLERANCE * np.abs(flat).max(1))


def with_stand_ins(a: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """``a`` with each constant map replaced by a ramp over the pixels, to be scored and then discarded.

    Why not drop those images: Quantus draws its random perturbations image by image in
    batch order (faithfulness correlation's pixel subsets, max-sensitivity's noise; ROAD's
    and random-logit's in the full profile), so one image left out shifts the draws of every
    image after it. Scored on the same batch, every explainer of a model gets the same
    perturbations of each image, so its difference from ``random`` stays paired and the
    shared forwards (:class:`MemoisedForward`) still match.
    """
    ramp = np.linspace(0.0, 1.0, a[0].size, dtype=a.dtype).reshape(a.shape[1:])
    out = a.copy()
    out[flat] = ramp
    return out


def evaluate_metric(metric: XaiMetric, model, x: np.ndarray, y: np.ndarray, a: np.ndarray,
                    masks: np.ndarray | None, explain_func=None, device: str = "cpu",
                    num_classes: int | None = None, forward_memo: dict | None = None) -> tuple[np.ndarray, str]:
    """One score per image (NaN where it cannot be computed) and a note saying why.

    Images whose map is constant, or whose ground-truth mask is empty (localisation), get
    NaN; a note counts them. A constant map is scored on a stand-in and its score discarded
    rather than its image left out (:func:`with_stand_ins`), so the other images keep their
    perturbations. A metric that cannot run at all gives all NaN and the reason.

    Quantus draws its random perturbations (faithfulness correlation's pixel subsets,
    max-sensitivity's noise) from NumPy's global generator; it is seeded with
    :data:`METRIC_SEED` for every call (and restored after), so a score does not depend on
    which explainers or jobs ran before it, and every explainer of a model is scored on the
    same perturbations: a paired comparison. ``forward_memo`` (a dict shared by the
    explainers of one model) then lets metrics with ``map_independent_inputs`` reuse the
    model's outputs on those perturbations (:class:`MemoisedForward`).
    """
    n = len(x)
    out = np.full(n, np.nan)
    if metric.needs_masks and masks is None:
        return out, "no ground-truth masks"
    if metric.single_channel_only and x.shape[1] != 1:
        return out, f"{metric.name} needs 1-channel input"
    if metric.name == "random_logit" and (num_classes or 0) < 2:
        return out, "needs two or more classes"
    if not np.isfinite(a).all():
        return out, "attributions are not finite"
    notes = []
    flat = flat_maps(a)
    if flat.all():
        return out, "every map is constant per image"
    if flat.any():
        notes.append(f"{int(flat.sum())} constant maps skipped")
        a = with_stand_ins(a, flat)
    run = np.ones(n, dtype=bool)  # the images Quantus sees: all but those without a ground-truth mask
    if metric.needs_masks:
        run = masks.reshape(n, -1).any(1)
        if not (run & ~flat).any():
            return out, "every ground-truth mask is empty"
        if not run.all():
            notes.append(f"{int((~run).sum())} images with empty masks skipped")
    keep = run & ~flat
    maps = np.repeat(a, x.shape[1], axis=1) if metric.perturbs_input and x.shape[1] > 1 else a
    kwargs = dict(model=model, x_batch=x[run], y_batch=y[run], a_batch=maps[run], channel_first=True,
                  softmax=metric.softmax, device=device, batch_size=max(int(run.sum()), 1))
    if metric.needs_masks:
        kwargs["s_batch"] = masks[run]
    if metric.needs_explain_func:
        kwargs["explain_func"] = explain_func
    if metric.map_independent_inputs and forward_memo is not None:
        kwargs["model"] = MemoisedForward(model, forward_memo)
    metric_obj = metric.make(x.shape[-1], num_classes, x.shape[1])
    state = np.random.get_state()
    np.random.seed(METRIC_SEED)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores = metric_obj(**kwargs)
    finally:
        np.random.set_state(state)
    values = np.asarray([_as_float(v) for v in np.ravel(np.asarray(scores, dtype=object))], dtype=float)
    if values.size != int(run.sum()):
        return out, f"quantus returned {values.size} scores for {int(run.sum())} images"
    values = values[keep[run]]  # a stand-in map's score is no score
    out[keep] = values
    bad = int((~np.isfinite(values)).sum())
    if bad == values.size:
        return out, "; ".join(notes + ["quantus returned no finite score"])
    if bad:
        notes.append(f"{bad} non-finite scores")
    return out, "; ".join(notes)


class MemoisedForward(torch.nn.Module):
    """The model, answering a batch it has seen before from ``memo`` instead of running it again.

    Why: faithfulness correlation feeds the model 100 randomly perturbed copies of the
    subset, chosen without looking at the map; with the seeded generator they are the same
    copies for every explainer of a model, and these forwards were 60% of the explanation
    time of the README's main command. Keys are the batch's exact bytes, so an answer is
    only reused for the very same input; the model runs in eval mode under ``no_grad``
    (Quantus' ``predict``), where its output is a function of the input alone.
    """

    def __init__(self, model: torch.nn.Module, memo: dict):
        super().__init__()
        self.model = model
        self.memo = memo
        self.training = model.training  # Quantus refuses a model in training mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or self.model.training:
            return self.model(x)
        data = x.detach().cpu().contiguous().numpy()
        key = (data.shape, str(data.dtype), hashlib.blake2b(data.tobytes(), digest_size=16).digest())
        if key not in self.memo:
            self.memo[key] = self.model(x)
        return self.memo[key].clone()


def _as_float(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def quantus_explain_func(explainer):
    """Adapt a kdbench explainer to Quantus' ``explain_func(model, inputs, targets)``."""

    def explain_func(model, inputs, targets, **kwargs):
        device = next(model.parameters()).device
        x = torch.as_tensor(inputs, dtype=torch.float32, device=device)
        t = torch.as_tensor(np.asarray(targets), dtype=torch.long, device=device).reshape(-1)
        return explainer(model.eval(), x, t).detach().float().cpu().numpy()

    return explain_func
