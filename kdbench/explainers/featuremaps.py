"""Feature-map explanations, after the KD-for-transparency study.

That study explains a layer-reduced student by looking at its feature maps stage by
stage. kdbench turns that into one map per image with a stated rule: for every stage in
``feature_info``, the channel mean of the absolute activation, upsampled to the input
size and min-max normalised per image; the explanation is the mean of those stage maps.
:func:`save_featuremap_figure` draws the per-stage maps themselves.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..features import FeatureTap, as_map, feature_modules


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


def save_featuremap_figure(model, x, path: str | Path, max_images: int = 4) -> Path:
    """A grid of the per-stage maps: images in rows, input then stages in columns."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, maps = stage_maps(model, x[:max_images])
    n, s = maps.shape[:2]
    fig, axes = plt.subplots(n, s + 1, figsize=(1.6 * (s + 1), 1.6 * n), squeeze=False)
    for i in range(n):
        img = x[i].permute(1, 2, 0).cpu()
        img = (img - img.min()) / (img.max() - img.min()).clamp_min(1e-12)
        axes[i, 0].imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None)
        for j in range(s):
            axes[i, j + 1].imshow(maps[i, j].cpu(), cmap="inferno", vmin=0, vmax=1)
        for ax in axes[i]:
            ax.set_axis_off()
    axes[0, 0].set_title("input", fontsize=8)
    for j, name in enumerate(names):
        axes[0, j + 1].set_title(name, fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
