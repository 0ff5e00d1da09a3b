"""The explanation figures: people look at explanations, they do not read them.

- :func:`model_explainer_grid`, one PNG per dataset: one row per model (teacher first),
  one block of columns per explainer holding the same few test images of the fixed
  evaluation subset, the inputs (ground-truth masks outlined) on top. A benchmark has
  tens of models; models in rows keep the figure readable where one long row is not.
- :func:`explanation_grid`: images in rows, one column per labelled map (the per-stage
  feature-map figure).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def file_stem(name: str) -> str:
    """A dataset spec or label as a file-name part: ``medmnist:bloodmnist`` -> ``medmnist_bloodmnist``."""
    return name.replace(":", "_").replace("/", "_")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _show_input(ax, image: np.ndarray) -> None:
    """A standardised (C, H, W) image, rescaled to [0, 1]; grey when it has one channel."""
    img = np.transpose(image, (1, 2, 0))
    img = (img - img.min()) / max(img.max() - img.min(), 1e-12)
    ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None)


def _show_map(ax, attribution: np.ndarray) -> None:
    """An (H, W) attribution as |a| / max |a|: each map on its own scale, as explainers differ in units."""
    m = np.abs(attribution)
    ax.imshow(m / max(m.max(), 1e-12), cmap="inferno", vmin=0, vmax=1)


def _outline(ax, mask: np.ndarray) -> None:
    ax.contour(mask[0], levels=[0.5], colors="cyan", linewidths=0.6)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def explanation_grid(images: np.ndarray, masks: np.ndarray | None, columns: list[tuple[str, np.ndarray]],
                     path: str | Path, title: str = "") -> Path:
    """``images`` (N, C, H, W) standardised; ``columns``: (label, maps (N, H, W))."""
    n = len(images)
    fig, axes = _pyplot().subplots(n, len(columns) + 1, figsize=(1.35 * (len(columns) + 1), 1.45 * n + 0.6),
                                   squeeze=False)
    for i in range(n):
        _show_input(axes[i, 0], images[i])
        if masks is not None and masks[i].any():
            for j in range(len(columns) + 1):
                _outline(axes[i, j], masks[i])
        for j, (_, maps) in enumerate(columns):
            _show_map(axes[i, j + 1], maps[i])
    for ax in axes.ravel():
        ax.set_axis_off()
    axes[0, 0].set_title("input + mask" if masks is not None else "input", fontsize=7)
    for j, (label, _) in enumerate(columns):
        axes[0, j + 1].set_title(label, fontsize=6)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def model_explainer_grid(images: np.ndarray, masks: np.ndarray | None,
                         models: list[tuple[str, dict[str, np.ndarray]]], explainers: list[str],
                         path: str | Path, title: str = "") -> Path:
    """``images`` (N, C, H, W) standardised; ``models``: (label, {explainer: maps (N, H, W)}).

    A model without an explainer's maps (say ``medtex-mask`` for a Hinton student) leaves
    its cells blank rather than shifting the columns.
    """
    n, cols = len(images), len(explainers) * len(images)
    fig, axes = _pyplot().subplots(len(models) + 1, cols,
                                   figsize=(0.85 * cols + 1.6, 0.85 * (len(models) + 1) + 0.7), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for e, name in enumerate(explainers):
        for i in range(n):
            _show_input(axes[0, e * n + i], images[i])
            if masks is not None and masks[i].any():
                _outline(axes[0, e * n + i], masks[i])
        axes[0, e * n].set_title(name, fontsize=8, loc="left")
        for r, (_, maps) in enumerate(models, start=1):
            if name in maps:
                for i in range(n):
                    _show_map(axes[r, e * n + i], maps[name][i])
    labels = ["input" + (" + mask" if masks is not None else "")] + [label for label, _ in models]
    for r, label in enumerate(labels):
        axes[r, 0].text(-0.15, 0.5, label, transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.subplots_adjust(left=1.5 / fig.get_figwidth(), wspace=0.05, hspace=0.08)
    return _save(fig, path)
