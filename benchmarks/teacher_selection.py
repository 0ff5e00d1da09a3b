"""Which validation score should pick a teacher's epoch? Measured, per seed, on one training run.

A benchmark's teacher keeps the epoch with the best validation score. On a small validation
split (BreastMNIST: 78 images) that choice is fragile: accuracy moves in steps of 1/78 and
ties are common, so the chosen epoch, and the teacher's test score, can change with the
CPU's float rounding. The references choose differently: MedMNIST v2 on validation AUC,
MedMNIST+ on the lowest validation loss.

This script trains a benchmark's teacher exactly as ``kdbench run`` does (same model, seed,
recipe and training loop) and, after every epoch, scores it on validation (accuracy, AUC,
cross-entropy) and, for this analysis only, on test. It then prints, for each selection
rule, the epoch it picks and the test accuracy / AUC it gives, per seed and as mean ± std,
beside the MedMNIST+ line. Test scores never take part in any choice inside kdbench.

    python benchmarks/teacher_selection.py benchmarks/breastmnist.toml [--seeds 0,1,2] [--no-augment]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from tabulate import tabulate

from kdbench.config.benchmark import load_toml
from kdbench.config.preflight import resolve_device
from kdbench.distill.methods.scratch import Scratch
from kdbench.distill.models import create_model
from kdbench.distill.training import fit, seed_everything
from kdbench.evaluate.predictive import (
    predict_logits,
    predictive_metrics,
    probabilities,
)
from kdbench.evaluate.selection import SELECTION_RULES, selection_score
from kdbench.plugins import load_plugins
from kdbench.report.references import references_for
from kdbench.run.loading import load_dataset
from kdbench.run.steps import teacher_train_config


def epoch_scores(model, split, task: str, device: str) -> dict:
    """Accuracy and AUC of ``model`` on ``split``, and every selection rule's score."""
    logits = predict_logits(model, split.x, device=device)
    metrics = predictive_metrics(probabilities(logits, task), split.y.numpy(), task)
    scores = {rule: selection_score(logits, split.y, task, rule) for rule in SELECTION_RULES}
    return {"accuracy": metrics["accuracy"], "auc": metrics["auc"], "scores": scores}


def train_with_trace(bench, spec: str, teacher: str, seed: int, augment: bool, plugins) -> list[dict]:
    """Train the teacher as ``kdbench run`` does and record validation and test scores per epoch."""
    bundle = load_dataset(spec, bench, plugins)
    info = bundle.info
    seed_everything(seed)
    model = create_model(teacher, plugins.models, num_classes=info.num_classes, in_chans=info.in_chans,
                         image_size=info.image_size, pretrained=bench.teacher_pretrained)
    device = resolve_device(bench.device)
    cfg = replace(teacher_train_config(bench, seed, device), augment=augment)
    trace = []

    def record(epoch, _):
        trace.append({"epoch": epoch + 1, "val": epoch_scores(model, bundle.val, info.task, device),
                      "test": epoch_scores(model, bundle.test, info.task, device)})
        print(json.dumps({"seed": seed, "epoch": epoch + 1, "val_acc": trace[-1]["val"]["accuracy"],
                          "val_auc": trace[-1]["val"]["auc"], "test_acc": trace[-1]["test"]["accuracy"],
                          "test_auc": trace[-1]["test"]["auc"]}), flush=True)

    fit(Scratch(model, None, info), bundle.train, bundle.val, cfg, on_epoch=record)
    return trace


def chosen(trace: list[dict], rule: str) -> dict:
    """The epoch ``fit`` keeps under ``rule``: the first one with the best validation score."""
    return max(trace, key=lambda t: (t["val"]["scores"][rule], -t["epoch"]))


def _std(values: np.ndarray) -> float:
    """The seed std (ddof 1); 0 for one seed."""
    return float(values.std(ddof=1)) if len(values) > 1 else 0.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--seeds", default=None, help="comma-separated seeds (default: the config's)")
    ap.add_argument("--no-augment", action="store_true", help="train the teacher without flips and shifts")
    ap.add_argument("--save", help="write the per-epoch traces to this JSON file")
    args = ap.parse_args(argv)
    bench = load_toml(args.config)
    if bench.teacher_checkpoint:
        raise SystemExit(f"{args.config} loads its teacher from {bench.teacher_checkpoint}: nothing is trained to select")
    if len(bench.datasets) > 1 or len(bench.teachers) > 1:
        print(f"measuring the first dataset and teacher only: {bench.datasets[0]}, {bench.teachers[0]}")
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else list(bench.seeds)
    augment = (bench.augment or bench.teacher_augment) and not args.no_augment
    plugins = load_plugins()
    spec, teacher = bench.datasets[0], bench.teachers[0]
    traces = {seed: train_with_trace(bench, spec, teacher, seed, augment, plugins) for seed in seeds}
    if args.save:
        Path(args.save).write_text(json.dumps({str(s): t for s, t in traces.items()}, indent=1))
    rows = []
    for rule in SELECTION_RULES + ("last epoch",):
        picks = [trace[-1] if rule == "last epoch" else chosen(trace, rule) for trace in traces.values()]
        acc = np.array([p["test"]["accuracy"] for p in picks])
        auc = np.array([p["test"]["auc"] for p in picks])
        rows.append([rule, " ".join(str(p["epoch"]) for p in picks),
                     " ".join(f"{a:.3f}/{u:.3f}" for a, u in zip(acc, auc)),
                     f"{acc.mean():.3f} ± {_std(acc):.3f}", f"{auc.mean():.3f} ± {_std(auc):.3f}",
                     f"{auc.mean() - _std(auc):.3f}"])
    line = next(((r.accuracy, r.auc) for r in references_for(spec) if r.source == "MedMNIST+"), None)
    print(f"\n{spec}, teacher {teacher}, {bench.teacher_epochs} epochs, augment={augment}, seeds {seeds}"
          + (f"; MedMNIST+ line {line[0]:.3f} / {line[1]:.3f}" if line else ""))
    print(tabulate(rows, headers=["selection", "epochs", "test acc/AUC per seed", "test accuracy", "test AUC",
                                  "AUC mean - std"], tablefmt="github"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
