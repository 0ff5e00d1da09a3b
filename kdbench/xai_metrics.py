"""Explanation-quality metrics: Quantus 0.6.0, configured and guarded.

Every metric is built for the image at hand (``subset_size`` < H*W, ``features_in_step``
divides H*W, ``k`` < H*W) and called with ``channel_first``, ``softmax``, ``abs``,
``normalise`` and ``return_aggregate`` set explicitly (the known traps of Quantus 0.6.0).
Guards turn inputs that make a metric crash or mis-score into NaN with a reason:

- localisation metrics skip images whose ground-truth mask is empty (PointingGame counts
  an empty mask as a hit), and are not applicable without masks;
- ``weighted=True`` localisation variants are never used (wrong or crashing in 0.6.0);
- ROAD and IROF are not applicable to multi-channel input (they crash), and ROAD is given
  ``batch_size >= n`` (otherwise it scores only the first batch).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import quantus
import torch


@dataclass(frozen=True)
class XaiMetric:
    """A Quantus metric with its direction, tier and the parameters kdbench sets."""

    name: str
    build: Callable[[int, int], object]  # (image_size, num_classes) -> quantus metric
    higher_is_better: bool
    profile: str = "default"  # "default" or "full"
    needs_masks: bool = False
    needs_explain_func: bool = False
    single_channel_only: bool = False
    params: dict = field(default_factory=dict)
    softmax: bool = True

    def describe(self) -> str:
        arrow = "↑" if self.higher_is_better else "↓"
        extra = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.name} {arrow}" + (f" ({extra})" if extra else "")


def _common(**kw):
    return dict(disable_warnings=True, display_progressbar=False, return_aggregate=False, **kw)


def _faithfulness_correlation(size, num_classes):
    return quantus.FaithfulnessCorrelation(nr_runs=10, subset_size=max(1, size * size // 16), perturb_baseline="mean",
                                           abs=False, normalise=True, **_common())


def _pixel_flipping(size, num_classes):
    return quantus.PixelFlipping(features_in_step=size * size // 16, perturb_baseline="mean", abs=False, normalise=True,
                                 return_auc_per_sample=True, **_common())


def _max_sensitivity(size, num_classes):
    return quantus.MaxSensitivity(nr_samples=5, lower_bound=0.1, abs=False, normalise=False, **_common())


def _topk(size, num_classes):
    return quantus.TopKIntersection(k=max(1, size * size // 20), abs=False, normalise=True, **_common())


DEFAULT_METRICS: list[XaiMetric] = [
    XaiMetric("faithfulness_correlation", _faithfulness_correlation, True,
              params={"nr_runs": 10, "subset_size": "H*W/16", "perturb_baseline": "mean"}),
    XaiMetric("pixel_flipping", _pixel_flipping, False,
              params={"features_in_step": "H*W/16", "perturb_baseline": "mean", "auc": True}),
    XaiMetric("max_sensitivity", _max_sensitivity, False, needs_explain_func=True,
              params={"nr_samples": 5, "lower_bound": 0.1}),
    XaiMetric("sparseness", lambda s, c: quantus.Sparseness(abs=True, normalise=True, **_common()), True),
    XaiMetric("complexity", lambda s, c: quantus.Complexity(abs=True, normalise=True, **_common()), False),
    XaiMetric("pointing_game", lambda s, c: quantus.PointingGame(weighted=False, abs=False, normalise=True, **_common()),
              True, needs_masks=True),
    XaiMetric("attribution_localisation",
              lambda s, c: quantus.AttributionLocalisation(weighted=False, abs=True, normalise=True, **_common()),
              True, needs_masks=True),
    XaiMetric("topk_intersection", _topk, True, needs_masks=True, params={"k": "H*W/20"}),
    XaiMetric("relevance_rank_accuracy",
              lambda s, c: quantus.RelevanceRankAccuracy(abs=False, normalise=True, **_common()), True, needs_masks=True),
]

FULL_METRICS: list[XaiMetric] = [
    XaiMetric("road", lambda s, c: quantus.ROAD(percentages=list(range(10, 100, 20)), noise=0.01, abs=False,
                                                normalise=True, **_common()),
              True, profile="full", single_channel_only=True, params={"percentages": "10..90 step 20"}),
    XaiMetric("irof", lambda s, c: quantus.IROF(segmentation_method="slic", perturb_baseline="mean", abs=False,
                                                normalise=True, **_common()),
              True, profile="full", single_channel_only=True),
    XaiMetric("monotonicity_correlation",
              lambda s, c: quantus.MonotonicityCorrelation(nr_samples=5, features_in_step=s * s // 16,
                                                           perturb_baseline="mean", abs=False, normalise=True,
                                                           **_common()),
              True, profile="full", params={"nr_samples": 5, "features_in_step": "H*W/16"}),
    XaiMetric("infidelity", lambda s, c: quantus.Infidelity(n_perturb_samples=5, perturb_patch_sizes=[max(2, s // 8)],
                                                            abs=False, normalise=False, **_common()),
              False, profile="full", params={"n_perturb_samples": 5, "patch": "H/8"}),
    XaiMetric("random_logit", lambda s, c: quantus.RandomLogit(num_classes=c, abs=False, normalise=True, **_common()),
              False, profile="full", needs_explain_func=True),
    XaiMetric("efficient_mprt", lambda s, c: quantus.EfficientMPRT(abs=False, normalise=True, **_common()),
              True, profile="full", needs_explain_func=True),
]


def metrics_for(profile: str) -> list[XaiMetric]:
    return DEFAULT_METRICS + (FULL_METRICS if profile == "full" else [])


def evaluate_metric(metric: XaiMetric, model, x: np.ndarray, y: np.ndarray, a: np.ndarray,
                    masks: np.ndarray | None, explain_func=None, device: str = "cpu",
                    num_classes: int | None = None) -> tuple[float, str]:
    """Mean score over the images, or NaN and the reason it could not be computed."""
    if metric.needs_masks and masks is None:
        return math.nan, "no ground-truth masks"
    if metric.single_channel_only and x.shape[1] != 1:
        return math.nan, f"quantus 0.6.0 {metric.name} crashes on {x.shape[1]}-channel input"
    if metric.name == "random_logit" and (num_classes or 0) < 2:
        return math.nan, "needs two or more classes"
    note = ""
    keep = np.ones(len(x), bool)
    if metric.needs_masks:
        keep = masks.reshape(len(masks), -1).any(1)
        if not keep.any():
            return math.nan, "every ground-truth mask is empty"
        if not keep.all():
            note = f"{int((~keep).sum())} images with empty masks skipped"
    if not np.isfinite(a).all():
        return math.nan, "attributions are not finite"
    if np.all(a[keep] == 0):
        return math.nan, "attributions are all zero"
    kwargs = dict(model=model, x_batch=x[keep], y_batch=y[keep], a_batch=a[keep], channel_first=True,
                  softmax=metric.softmax, device=device, batch_size=max(int(keep.sum()), 1))
    if metric.needs_masks:
        kwargs["s_batch"] = masks[keep]
    if metric.needs_explain_func:
        kwargs["explain_func"] = explain_func
    metric_obj = metric.build(x.shape[-1], num_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = metric_obj(**kwargs)
    values = np.asarray([float(v) for v in np.ravel(np.asarray(scores, dtype=object))], dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, "quantus returned no finite score"
    if finite.size < values.size:
        note = "; ".join(filter(None, [note, f"{values.size - finite.size} non-finite scores dropped"]))
    return float(finite.mean()), note


def quantus_explain_func(explainer):
    """Adapt a kdbench explainer to Quantus' ``explain_func(model, inputs, targets)``."""

    def explain_func(model, inputs, targets, **kwargs):
        device = next(model.parameters()).device
        x = torch.as_tensor(inputs, dtype=torch.float32, device=device)
        t = torch.as_tensor(np.asarray(targets), dtype=torch.long, device=device).reshape(-1)
        return explainer(model, x, t).detach().float().cpu().numpy()

    return explain_func
