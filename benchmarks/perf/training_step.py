"""Training overhead: kdbench's distillation loop against a hand-written PyTorch loop.

Both do the same work per step (Hinton KD, resnet18 teacher frozen under no_grad,
mobilenetv3_small_050 student, batch 128, AdamW + OneCycle, one validation pass per
epoch) on the same data; they are alternated in one process, so machine noise hits both.
The figure is kdbench's images per second divided by the plain loop's (target >= 0.95).

    python benchmarks/perf/training_step.py [--rounds 3] [--steps 10] [--write]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from common import machine, write_section

from kdbench.builtins.datasets import synthetic
from kdbench.distill.methods.hinton import Hinton
from kdbench.distill.models import create_model
from kdbench.distill.training import TrainConfig, fit, freeze
from kdbench.plugins import load_plugins


def models(info, plugins):
    torch.manual_seed(0)
    teacher = freeze(create_model("resnet18", plugins.models, num_classes=3, in_chans=3, image_size=32))
    student = create_model("mobilenetv3_small_050", plugins.models, num_classes=3, in_chans=3, image_size=32)
    return teacher, student


def kdbench_epoch(data, train, plugins, batch):
    teacher, student = models(data.info, plugins)
    method = Hinton(student, teacher, data.info)
    cfg = TrainConfig(epochs=1, batch_size=batch, lr=2e-3)
    start = time.perf_counter()
    fit(method, train, data.val, cfg)
    return time.perf_counter() - start


def plain_epoch(data, train, plugins, batch, T=4.0, alpha=0.9):
    teacher, student = models(data.info, plugins)
    opt = torch.optim.AdamW(student.parameters(), lr=2e-3, weight_decay=1e-4, foreach=True)  # as kdbench's fit
    steps = -(-len(train) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.15)
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    student.train()
    for idx in torch.randperm(len(train), generator=gen).split(batch):
        x, y = train.x[idx], train.y[idx]
        with torch.no_grad():
            t = teacher(x)
        s = student(x)
        kd = F.kl_div(F.log_softmax(s / T, 1), F.log_softmax(t / T, 1), reduction="batchmean",
                      log_target=True) * T * T
        loss = (1 - alpha) * F.cross_entropy(s, y) + alpha * kd
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    student.eval()
    with torch.no_grad():
        for i in range(0, len(data.val), 256):
            student(data.val.x[i:i + 256])
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    plugins = load_plugins()
    data = synthetic(n_train=args.steps * args.batch, n_val=256, n_test=8)
    train = data.train
    images = len(train)
    kdbench_epoch(data, train, plugins, args.batch)  # warm-up both paths
    plain_epoch(data, train, plugins, args.batch)
    ours, plain = [], []
    for _ in range(args.rounds):
        ours.append(images / kdbench_epoch(data, train, plugins, args.batch))
        plain.append(images / plain_epoch(data, train, plugins, args.batch))
    ratio = statistics.median(o / p for o, p in zip(ours, plain))
    table = (f"| loop | images/s (median of {args.rounds}) |\n|---|---|\n"
             f"| hand-written PyTorch | {statistics.median(plain):.0f} |\n"
             f"| kdbench `fit` + `Hinton` | {statistics.median(ours):.0f} |\n\n"
             f"**kdbench / plain = {ratio:.3f}** (target >= 0.95; per round: "
             f"{', '.join(f'{o / p:.3f}' for o, p in zip(ours, plain))})")
    print(table)
    if args.write:
        write_section("training-step", f"## Training overhead\n\nHinton KD, resnet18 -> mobilenetv3_small_050, "
                                       f"32x32, batch {args.batch}, {images} images per epoch, CPU. `python "
                                       f"benchmarks/perf/training_step.py --write`. {machine()}.\n\n{table}")


if __name__ == "__main__":
    main()
