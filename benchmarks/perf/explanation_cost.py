"""Explanation cost: seconds per image of each explainer and of each default Quantus metric.

Attributions are computed on whole batches; every Quantus metric gets the whole subset as
one batch (``batch_size = n``). The model is mobilenetv3_small_050 (what the default
benchmark explains), untrained: cost does not depend on the weights.

    python benchmarks/perf/explanation_cost.py [--samples 32] [--write]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from common import machine, write_section

from kdbench.builtins.datasets import synthetic
from kdbench.distill.models import create_model
from kdbench.explain.metrics import (
    DEFAULT_METRICS,
    evaluate_metric,
    quantus_explain_func,
)
from kdbench.plugins import load_plugins

EXPLAINERS = ["gradcam", "saliency", "integrated-gradients", "occlusion", "featuremaps", "random"]


def measure(size: int, n: int, plugins) -> tuple[dict, dict]:
    data = synthetic(image_size=size, n_train=16, n_val=8, n_test=max(n, 8))
    torch.manual_seed(0)
    model = create_model("mobilenetv3_small_050", plugins.models, num_classes=3, in_chans=3, image_size=size).eval()
    x, y = data.test.x[:n], data.test.y[:n]
    masks = data.test.masks[:n].numpy()
    attribution, metrics = {}, {}
    for name in EXPLAINERS:
        explain = plugins.explainers.get(name).obj
        start = time.perf_counter()
        a = explain(model, x, y)
        attribution[name] = (time.perf_counter() - start) / n
        for m in DEFAULT_METRICS:
            start = time.perf_counter()
            evaluate_metric(m, model, x.numpy(), y.numpy(), a.numpy(), masks, explain_func=quantus_explain_func(explain),
                            num_classes=3)
            metrics.setdefault(m.name, {})[name] = (time.perf_counter() - start) / n
    return attribution, metrics


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    plugins = load_plugins()
    parts = []
    for size in (28, 64):
        attribution, metrics = measure(size, args.samples, plugins)
        header = "| | " + " | ".join(EXPLAINERS) + " |\n|---|" + "---|" * len(EXPLAINERS) + "\n"
        rows = ["| attribution | " + " | ".join(f"{attribution[e] * 1000:.1f}" for e in EXPLAINERS) + " |"]
        for m, per in metrics.items():
            rows.append(f"| {m} | " + " | ".join(f"{per[e] * 1000:.1f}" for e in EXPLAINERS) + " |")
        total = {e: sum(per[e] for per in metrics.values()) for e in EXPLAINERS}
        rows.append("| **all default metrics** | " + " | ".join(f"**{total[e] * 1000:.0f}**" for e in EXPLAINERS) + " |")
        worst = max(metrics, key=lambda m: np.mean(list(metrics[m].values())))
        share = np.mean([metrics[worst][e] / total[e] for e in EXPLAINERS])
        parts.append(f"### {size}x{size}, milliseconds per image\n\n{header}" + "\n".join(rows) +
                     f"\n\nThe slowest metric is `{worst}` ({share:.0%} of the metric time on average).")
    text = "\n\n".join(parts)
    print(text)
    if args.write:
        write_section("explanation-cost", f"## Explanation cost\n\n{args.samples} images, mobilenetv3_small_050, "
                                          f"default Quantus profile. `python benchmarks/perf/explanation_cost.py "
                                          f"--write`. {machine()}.\n\n{text}")


if __name__ == "__main__":
    main()
