"""Dead kernel taps: kdbench's cropped convolutions against the whole kernels, at MedMNIST's 28 px.

At 28 px timm's resnet18 ends on 2x2 and 1x1 maps and mobilenetv3_small_050 runs 5x5
depthwise kernels on them; most of those kernels' taps only ever see zero padding
(kdbench.distill.dead_taps). The same model object is timed with every tap
(``full_kernels()``, what PyTorch runs by default) and with the dead taps cropped, in
alternated rounds in one process: an inference forward and a training step (forward,
backward, SGD) at batch 128, each model in the memory format kdbench gives it. The ratio is
whole-kernel time / cropped time (> 1: cropping is faster).

    python benchmarks/perf/dead_taps.py [--rounds 5] [--write]
"""

from __future__ import annotations

import argparse
import contextlib

import torch
from common import machine, ratio_cells, timed, write_section

from kdbench.distill.dead_taps import full_kernels
from kdbench.distill.models import create_model, memory_format_for
from kdbench.plugins import load_plugins


def measure(model, x, cropped: bool, repeats: int) -> tuple[float, float]:
    context = contextlib.nullcontext if cropped else full_kernels
    model.eval()
    with torch.no_grad(), context():
        forward = timed(lambda: model(x), repeats, warmup=2)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        with context():
            out = model(x)
        out.logsumexp(1).mean().backward()
        opt.step()

    return forward, timed(step, repeats, warmup=2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    models = load_plugins(entry_points=False).models
    lines = ["| model (28 px, batch 128) | pass | whole kernels (ms) | dead taps cropped (ms) | whole / cropped |",
             "|---|---|---|---|---|"]
    for name in ("resnet18", "mobilenetv3_small_050"):
        torch.manual_seed(0)
        model = create_model(name, models, num_classes=8, in_chans=3, image_size=28)
        fmt = memory_format_for(model)
        model = model.to(memory_format=fmt)
        x = torch.randn(128, 3, 28, 28).contiguous(memory_format=fmt)
        runs = {False: [], True: []}
        for _ in range(args.rounds):
            for cropped in (False, True):
                runs[cropped].append(measure(model, x, cropped, args.repeats))
        for i, what in enumerate(("inference forward", "training step")):
            cells = ratio_cells([r[i] for r in runs[False]], [r[i] for r in runs[True]])
            lines.append(f"| {name} | {what} | {cells} |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        write_section("dead-taps", f"## Dead kernel taps\n\nSame model object, whole kernels against dead taps "
                                   f"cropped (`kdbench.distill.dead_taps`), median of {args.rounds} alternated "
                                   f"rounds (range in brackets). `python benchmarks/perf/dead_taps.py --write`. "
                                   f"{machine()}.\n\n{table}\n\nOutputs and gradients are the same numbers up to float rounding "
                                   f"(tests/test_dead_taps.py); FLOPs and latency columns are measured with "
                                   f"whole kernels, as any other framework counts them.")


if __name__ == "__main__":
    main()
