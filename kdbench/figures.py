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


def explanation_grid(images: np.ndarray, masks: np.ndarray | None, columns: list[tuple[str, np.ndarray]],
                     path: str | Path, title: str = "") -> Path:
    """``images`` (N, C, H, W) standardised; ``columns``: (label, maps (N, H, W))."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(images)
    fig, axes = plt.subplots(n, len(columns) + 1, figsize=(1.35 * (len(columns) + 1), 1.45 * n + 0.6),
                             squeeze=False)
    for i in range(n):
        img = np.transpose(images[i], (1, 2, 0))
        img = (img - img.min()) / max(img.max() - img.min(), 1e-12)
        axes[i, 0].imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None)
        if masks is not None and masks[i].any():
            for j in range(len(columns) + 1):
                axes[i, j].contour(masks[i, 0], levels=[0.5], colors="cyan", linewidths=0.6)
        for j, (_, maps) in enumerate(columns):
            m = np.abs(maps[i])
            axes[i, j + 1].imshow(m / max(m.max(), 1e-12), cmap="inferno", vmin=0, vmax=1)
    for ax in axes.ravel():
        ax.set_axis_off()
    axes[0, 0].set_title("input + mask" if masks is not None else "input", fontsize=7)
    for j, (label, _) in enumerate(columns):
        axes[0, j + 1].set_title(label, fontsize=6)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _normalised(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    img = np.transpose(image, (1, 2, 0))
    img = (img - img.min()) / max(img.max() - img.min(), 1e-12)
    return (img[..., 0], "gray") if img.shape[-1] == 1 else (img, None)


def model_explainer_grid(images: np.ndarray, masks: np.ndarray | None,
                         models: list[tuple[str, dict[str, np.ndarray]]], explainers: list[str],
                         path: str | Path, title: str = "") -> Path:
    """``images`` (N, C, H, W) standardised; ``models``: (label, {explainer: maps (N, H, W)}).

    A model without an explainer's maps (say ``medtex-mask`` for a Hinton student) leaves
    its cells blank rather than shifting the columns.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n, cols = len(images), len(explainers) * len(images)
    fig, axes = plt.subplots(len(models) + 1, cols, figsize=(0.85 * cols + 1.6, 0.85 * (len(models) + 1) + 0.7),
                             squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for e, name in enumerate(explainers):
        for i in range(n):
            ax = axes[0, e * n + i]
            img, cmap = _normalised(images[i])
            ax.imshow(img, cmap=cmap)
            if masks is not None and masks[i].any():
                ax.contour(masks[i, 0], levels=[0.5], colors="cyan", linewidths=0.6)
        axes[0, e * n].set_title(name, fontsize=8, loc="left")
        for r, (_, maps) in enumerate(models, start=1):
            if name not in maps:
                continue
            for i in range(n):
                m = np.abs(maps[name][i])
                axes[r, e * n + i].imshow(m / max(m.max(), 1e-12), cmap="inferno", vmin=0, vmax=1)
    labels = ["input" + (" + mask" if masks is not None else "")] + [label for label, _ in models]
    for r, label in enumerate(labels):
        axes[r, 0].text(-0.15, 0.5, label, transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.subplots_adjust(left=1.5 / fig.get_figwidth(), wspace=0.05, hspace=0.08)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
