"""The explanation figures: people look at explanations, they do not read them.

- :func:`model_explainer_grid`, one PNG per dataset: one row per model (teacher first),
  one block of columns per explainer holding the same few test images of the fixed
  evaluation subset, the inputs (ground-truth masks outlined) on top. A benchmark has
  tens of models; models in rows keep the figure readable where one long row is not.
- :func:`explanation_grid`: images in rows, one column per labelled map (the per-stage
  feature-map figure).

:func:`method_style` and :func:`explainer_style` give each method and explainer one colour
(and marker) in every figure of every run: a fixed table for the built-in ones, a stable
hash of the name for plugins'.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

# -- one look per method and explainer, in every figure of every run ---------------------
#: Built-in methods: a fixed colour (tab10) and marker each. ``teacher`` is black, ``scratch``
#: (the baseline) grey; every other name gets a stable, hash-based choice from the rest.
METHOD_STYLES: dict[str, tuple[str, str]] = {
    "teacher": ("#000000", "*"), "scratch": ("#7f7f7f", "o"), "hinton": ("#1f77b4", "s"),
    "fitnets": ("#ff7f0e", "D"), "at": ("#2ca02c", "^"), "dkd": ("#d62728", "v"),
    "e2kd": ("#9467bd", "P"), "medtex": ("#8c564b", "X"),
}
EXPLAINER_STYLES: dict[str, tuple[str, str]] = {
    "gradcam": ("#1f77b4", "s"), "saliency": ("#ff7f0e", "D"), "integrated-gradients": ("#2ca02c", "^"),
    "occlusion": ("#d62728", "v"), "featuremaps": ("#9467bd", "P"), "medtex-mask": ("#8c564b", "X"),
    "random": ("#7f7f7f", "o"),
}
#: For names not in the tables above (plugin methods and explainers): none of the built-in colours.
EXTRA_COLOURS = ("#e377c2", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173",
                 "#3182bd", "#e6550d", "#31a354", "#756bb1")
EXTRA_MARKERS = ("p", "h", "<", ">", "d", "8", "H")


def _stable(name: str, table: dict[str, tuple[str, str]]) -> tuple[str, str]:
    if name in table:
        return table[name]
    h = int.from_bytes(hashlib.sha256(str(name).encode("utf-8")).digest()[:8], "big")  # not hash(): salted per process
    return EXTRA_COLOURS[h % len(EXTRA_COLOURS)], EXTRA_MARKERS[(h // len(EXTRA_COLOURS)) % len(EXTRA_MARKERS)]


def method_style(method: str) -> dict:
    """``color``, ``marker`` and ``linestyle`` of a method: the same in every figure, whatever else is drawn."""
    color, marker = _stable(method, METHOD_STYLES)
    return {"color": color, "marker": marker, "linestyle": "--" if method == "scratch" else "-"}


def explainer_style(explainer: str) -> dict:
    color, marker = _stable(explainer, EXPLAINER_STYLES)
    return {"color": color, "marker": marker}


def method_order(methods, known=tuple(METHOD_STYLES)) -> list[str]:
    """Legend order: the built-in methods in their fixed order, then the others by name."""
    known = list(known)
    return sorted(dict.fromkeys(methods), key=lambda m: (known.index(m), "") if m in known else (len(known), m))


def explainer_order(explainers) -> list[str]:
    return method_order(explainers, tuple(EXPLAINER_STYLES))


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
                         path: str | Path, title: str = "", label_colors: list[str] | None = None) -> Path:
    """``images`` (N, C, H, W) standardised; ``models``: (label, {explainer: maps (N, H, W)}).

    A model without an explainer's maps (say ``medtex-mask`` for a Hinton student) leaves
    its cells blank rather than shifting the columns. ``label_colors``: one per model (its
    method's colour, as in the plots), for the row labels.
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
    colors = ["black"] + list(label_colors or ["black"] * len(models))
    for r, label in enumerate(labels):
        axes[r, 0].text(-0.15, 0.5, label, transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=7,
                        color=colors[r])
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.subplots_adjust(left=1.5 / fig.get_figwidth(), wspace=0.05, hspace=0.08)
    return _save(fig, path)


def write_run_figures(bench, rows: list[dict], store, dataset, out_dir: str | Path) -> list[Path]:
    """The explanation figure of each dataset, and the per-stage feature-map figures if asked for.

    Explanation figure: the teacher and every full-data student of the first seed, one row
    per model, one block of columns per explainer. Built from the stored rows and the maps
    kept in the artifact store, so a resumed or fully cached run draws the same complete
    figure as an uninterrupted one. Only the largest fraction is drawn: the less-data
    students are in the tables, and one row per model keeps a benchmark's figure
    readable. ``dataset(spec)`` returns a loaded :class:`~kdbench.data.contract.DatasetBundle`.
    """
    from kdbench.explain.scoring import FIGURE_IMAGES, xai_subset
    from kdbench.run.results import latest_rows

    out_dir = Path(out_dir)
    seed, fraction = bench.seeds[0], max(bench.fractions)
    paths = []
    for spec in bench.datasets:
        models = [r for r in latest_rows(rows)  # one predictive row per config hash
                  if r.get("kind", "predictive") == "predictive" and r.get("status") == "ok"
                  and r["dataset"] == spec and r["seed"] == seed and r["fraction"] == fraction]
        models.sort(key=lambda r: ({"teacher": 0}.get(r["method"], 1), r["student"],
                                   {"scratch": 0}.get(r["method"], 1)))
        bundle = dataset(spec)
        paths += _featuremap_figures(bench, models, store, bundle, out_dir)
        drawn, colors = [], []
        for r in models:
            maps = store.load_arrays("maps", r["config_hash"]) or {}
            label = f"teacher {r['teacher']}" if r["method"] == "teacher" else f"{r['student']}\n{r['method']}"
            if any(name in maps for name in bench.explainers):
                drawn.append((label, maps))
                colors.append(method_style(r["method"])["color"])
        if not drawn:
            continue
        explainers = [e for e in bench.explainers if any(e in maps for _, maps in drawn)]
        idx = xai_subset(bundle, bench.xai_samples)[:FIGURE_IMAGES]
        masks = bundle.test.masks[idx].numpy() if bundle.test.masks is not None else None
        masks = masks.max(1, keepdims=True) if masks is not None else None  # per-label masks: every lesion
        title = f"{spec}, seed {seed}" + (f", fraction {fraction:g}" if len(bench.fractions) > 1 else "")
        paths.append(model_explainer_grid(bundle.test.x[idx].numpy(), masks, drawn, explainers,
                                          out_dir / f"explanations_{file_stem(spec)}.png", title=title,
                                          label_colors=colors))
    return paths


def _featuremap_figures(bench, models: list[dict], store, bundle, out_dir: Path) -> list[Path]:
    """Per-stage feature maps of each model (the transparency study's view), from the stored arrays."""
    from kdbench.explain.scoring import FIGURE_IMAGES, xai_subset

    if not (bench.featuremap_figures and "featuremaps" in bench.explainers):
        return []
    idx = xai_subset(bundle, bench.xai_samples)[:FIGURE_IMAGES]
    paths = []
    for r in models:
        stages = store.load_arrays("featuremaps", r["config_hash"])
        if not stages:
            continue
        columns = [(key.split(" ", 1)[1], stages[key]) for key in sorted(stages)]
        name = file_stem(f"featuremaps_{r['dataset']}_{r['student']}_{r['method']}_{r['fraction']:g}")
        paths.append(explanation_grid(bundle.test.x[idx].numpy(), None, columns, out_dir / f"{name}.png",
                                      title="feature maps per stage"))
    return paths
