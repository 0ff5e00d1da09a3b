"""The explanation figure: people look at explanations, they do not read them.

One PNG per dataset: a few test images of the fixed evaluation subset in rows; the input
(with the ground-truth mask outlined) and then, for the teacher and each student, one
column per explainer.
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
