"""Feature-map explanations, after the KD-for-transparency study.

That study explains a layer-reduced student by looking at its feature maps stage by
stage. kdbench turns that into one map per image with a stated rule: for every stage in
``feature_info``, the channel mean of the absolute activation, upsampled to the input
size and min-max normalised per image; the explanation is the mean of those stage maps.
The per-stage maps themselves are stored by the run and drawn by :mod:`kdbench.report.figures`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kdbench.distill.features import FeatureTap, as_map, feature_modules


@torch.no_grad()
def stage_maps(model, x) -> tuple[list[str], torch.Tensor]:
    """Per-stage maps, shape (B, S, H, W), each min-max normalised per image."""
    names = feature_modules(model)
    tap = FeatureTap(model, names)
    try:
        model(x)
        maps = []
        for n in names:
            a = as_map(tap[n], model).abs().mean(dim=1, keepdim=True)
            a = F.interpolate(a, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
            lo = a.flatten(1).min(1).values[:, None, None]
            hi = a.flatten(1).max(1).values[:, None, None]
            maps.append((a - lo) / (hi - lo).clamp_min(1e-12))
    finally:
        tap.remove()
    return names, torch.stack(maps, dim=1)


def featuremaps(model, x, target):
    """Mean over stages of normalised channel-mean activation maps (target-independent)."""
    _, maps = stage_maps(model, x)
    return maps.mean(dim=1, keepdim=True)
