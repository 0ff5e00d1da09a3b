"""The explanation stage of a job: attributions on a fixed subset, scored by Quantus.

The evaluation subset is a class-stratified sample of the test split drawn with a fixed
seed (0), so every teacher, student, method and explainer is scored on the very same
images. Each explainer explains the ground-truth class (multilabel: the model's
top-scoring label). Attribution time is measured separately from metric time.

When the ``random`` baseline is among the explainers, every other explainer's row also
carries, per metric, its paired difference from ``random`` on the same images of the
same model (``<metric>_vs_random``, oriented so that > 0 means better than random) with
a 95% bootstrap interval over the images (``_lo``, ``_hi``): an explanation score is
only worth reading against chance.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from kdbench.data.contract import DatasetBundle, explained_masks, stratify_key
from kdbench.distill.models import memory_format_for
from kdbench.errors import KdbenchError, NotApplicableError
from kdbench.explain.metrics import (
    XaiMetric,
    curve_steps,
    evaluate_metric,
    quantus_explain_func,
)
from kdbench.registry import Component

XAI_SEED = 0
FIGURE_IMAGES = 4
BASELINE = "random"
BOOTSTRAP = 2000


def xai_subset(bundle: DatasetBundle, n: int) -> np.ndarray:
    """Indices of the fixed, stratified evaluation subset of the test split."""
    y = bundle.test.y
    total = len(y)
    if n >= total:
        return np.arange(total)
    key = stratify_key(y, bundle.info.task)
    rng = np.random.default_rng(XAI_SEED)
    groups = [rng.permutation(np.flatnonzero(key == k)) for k in np.unique(key)]
    # round-robin over classes keeps the subset stratified for any n
    order = [g[i] for i in range(max(len(g) for g in groups)) for g in groups if i < len(g)]
    return np.sort(np.array(order[:n]))


def explanation_targets(model, x: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    if task != "multilabel":
        return y
    with torch.no_grad():
        return model(x).argmax(dim=1)


@dataclass
class Explained:
    rows: list[dict]
    maps: dict[str, np.ndarray]  # explainer -> (FIGURE_IMAGES, H, W) for the figure


def explain_model(model, bundle: DatasetBundle, explainers: list[Component], metrics: list[XaiMetric],
                  n_samples: int, device: str) -> Explained:
    """One row per explainer with the mean of every metric over the subset."""
    model = model.eval().to(memory_format=memory_format_for(model, device))  # Quantus' forwards: 3x for MobileNets
    idx = xai_subset(bundle, n_samples)
    x = bundle.test.x[idx].to(device)
    y = bundle.test.y[idx].to(device)
    target = explanation_targets(model, x, y, bundle.info.task)
    x_np, t_np = x.cpu().numpy(), target.cpu().numpy()
    masks = explained_masks(bundle.test.masks[idx].numpy(), t_np) if bundle.test.masks is not None else None
    rows, maps, scores = [], {}, {}
    forward_memo: dict = {}  # the model's outputs on map-independent perturbations, shared by the explainers
    channels, size = x.shape[1], x.shape[-1]
    steps = {m.name: n for m in metrics if (n := curve_steps(m, size, bundle.info.num_classes, channels))}
    for comp in explainers:
        row = {"kind": "explanation", "explainer": comp.name, "xai_samples": len(idx)}
        try:
            start = time.perf_counter()
            a = comp.obj(model, x, target)
            seconds = time.perf_counter() - start
            a = _check_maps(comp.name, a, x)
        except NotApplicableError as exc:
            rows.append(dict(row, status="not_applicable", error=str(exc)))
            continue
        except Exception as exc:
            rows.append(dict(row, status="failed", error=f"{type(exc).__name__}: {exc}"))
            continue
        maps[comp.name] = a[:FIGURE_IMAGES, 0].cpu().numpy()
        row.update(status="ok", error=None, explain_ms_per_image=1000 * seconds / len(idx))
        a_np = a.detach().cpu().numpy()
        notes, start = [], time.perf_counter()
        explain_func = quantus_explain_func(comp.obj)
        for metric in metrics:
            try:
                value, note = evaluate_metric(metric, model, x_np, t_np, a_np, masks,
                                              explain_func=explain_func, device=device,
                                              num_classes=bundle.info.num_classes, forward_memo=forward_memo)
            except Exception as exc:  # a metric bug is recorded, never a crash of the run
                value, note = np.full(len(idx), np.nan), f"{type(exc).__name__}: {exc}"
            scores.setdefault(comp.name, {})[metric.name] = value
            finite = value[np.isfinite(value)]
            row[metric.name] = float(finite.mean()) if finite.size else math.nan
            if note:
                notes.append(f"{metric.name}: {note}")
        row["metric_seconds"] = time.perf_counter() - start
        row["xai_curve_steps"] = steps or None
        row["xai_notes"] = "; ".join(notes) or None
        rows.append(row)
    add_random_differences(rows, scores, metrics)
    return Explained(rows, maps)


def add_random_differences(rows: list[dict], scores: dict, metrics: list[XaiMetric]) -> None:
    """``<m>_vs_random`` (> 0: better than random) with a 95% paired bootstrap interval over images."""
    base = scores.get(BASELINE)
    if base is None:
        return
    rng = np.random.default_rng(XAI_SEED)
    for row in rows:
        mine = scores.get(row["explainer"])
        if row["explainer"] == BASELINE or mine is None:
            continue
        for metric in metrics:
            a, b = mine.get(metric.name), base.get(metric.name)
            if a is None or b is None:
                continue
            both = np.isfinite(a) & np.isfinite(b)
            diff = (a - b)[both] if metric.higher_is_better else (b - a)[both]
            if diff.size < 2:
                continue
            boot = diff[rng.integers(0, diff.size, (BOOTSTRAP, diff.size))].mean(axis=1)
            row[f"{metric.name}_vs_random"] = float(diff.mean())
            row[f"{metric.name}_vs_random_lo"] = float(np.quantile(boot, 0.025))
            row[f"{metric.name}_vs_random_hi"] = float(np.quantile(boot, 0.975))


def _check_maps(name: str, a, x: torch.Tensor) -> torch.Tensor:
    expected = (x.shape[0], 1, *x.shape[-2:])
    if not isinstance(a, torch.Tensor) or tuple(a.shape) != expected:
        got = tuple(a.shape) if hasattr(a, "shape") else type(a).__name__
        raise KdbenchError(f"explainer {name} returned {got}, expected a tensor of shape {expected}")
    return a.detach().float()
