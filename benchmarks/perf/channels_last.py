"""Channels-last on CPU: the memory format kdbench trains and explains in, against PyTorch's default.

For the default student (mobilenetv3_small_050) and teacher (resnet18) at 32 px, batch 64:
an inference forward (what Quantus repeats hundreds of times per image) and a training step
(forward, backward, SGD), contiguous (NCHW) and channels-last alternated in one process.
The ratio is contiguous time / channels-last time (> 1: channels-last is faster).

    python benchmarks/perf/channels_last.py [--rounds 5] [--write]
"""

from __future__ import annotations

import argparse

import timm
import torch
from common import machine, ratio_cells, timed, write_section


def measure(name: str, channels_last: bool, repeats: int) -> tuple[float, float]:
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=3)
    x = torch.randn(64, 3, 32, 32)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    model.eval()
    with torch.no_grad():
        forward = timed(lambda: model(x), repeats)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        model(x).logsumexp(1).mean().backward()
        opt.step()

    return forward, timed(step, repeats)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    lines = ["| model | pass | contiguous (ms) | channels-last (ms) | contiguous / channels-last |", "|---|---|---|---|---|"]
    for name in ("mobilenetv3_small_050", "resnet18"):
        runs = {False: [], True: []}
        for _ in range(args.rounds):
            for cl in (False, True):
                runs[cl].append(measure(name, cl, args.repeats))
        for i, what in enumerate(("inference forward", "training step")):
            cells = ratio_cells([r[i] for r in runs[False]], [r[i] for r in runs[True]])
            lines.append(f"| {name} | {what} | {cells} |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        write_section("channels-last", f"## Channels-last on CPU\n\nBatch 64, 32x32, median of {args.rounds} "
                                       f"alternated rounds (range in brackets). `python benchmarks/perf/"
                                       f"channels_last.py --write`. {machine()}.\n\n{table}\n\nkdbench trains, "
                                       f"evaluates and explains in channels-last on every device.")


if __name__ == "__main__":
    main()
