"""Teacher-output cache: kdbench against a loop that recomputes the teacher, and against no teacher at all.

For each method (hinton, dkd, fitnets, e2kd) one distillation job of ``--epochs`` epochs
is timed three ways, alternated in one process so machine noise hits all three:

(a) **recomputing loop**: a hand-written PyTorch loop (AdamW + OneCycle, one validation
    pass per epoch) that calls the method's loss on every batch with the teacher computed
    live, as every KD framework does (for hinton the loss is written out by hand; for
    the others it is the method's own ``forward``, so only the teacher's cost differs);
(b) **kdbench**: ``fit`` with a fresh :class:`TeacherOutputCache` per job (the one pass
    of the teacher over the training set, the float64 term check and the validation
    passes are all inside the time);
(b') **kdbench, later jobs**: the same, with the teacher's outputs already computed by an
    earlier job of the same teacher and training set (every method after the first);
(c) **student-only loop**: the same loop with cross-entropy on the student alone, no
    teacher at all: the physical limit of any KD loop.

All three run in the memory formats kdbench picks (channels-last for the MobileNet
student on CPU, contiguous for the resnet18 teacher), so the ratios isolate the cache.

Targets (the performance issue): kdbench / (a) >= 1.4 for hinton and dkd at 28 px;
kdbench / (c) >= 0.85.

    python benchmarks/perf/teacher_cache.py [--rounds 3] [--epochs 8] [--write]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from common import machine, write_section

from kdbench.builtins.datasets import synthetic
from kdbench.distill.models import create_model, memory_format_for
from kdbench.distill.teacher_cache import TeacherOutputCache
from kdbench.distill.training import TrainConfig, fit, freeze
from kdbench.plugins import load_plugins

METHODS = ("hinton", "dkd", "fitnets", "e2kd")
SIZE = 28


def build(plugins, method_name, info):
    torch.manual_seed(0)
    teacher = freeze(create_model("resnet18", plugins.models, num_classes=info.num_classes, in_chans=3,
                                  image_size=SIZE))
    student = create_model("mobilenetv3_small_050", plugins.models, num_classes=info.num_classes, in_chans=3,
                           image_size=SIZE)
    method = plugins.methods.get(method_name).obj(student, teacher, info)
    # every loop runs in the memory formats kdbench picks (channels-last for the MobileNet
    # student on CPU), so the ratios isolate the teacher cache, not the memory format
    method.to(memory_format=memory_format_for(student))
    teacher.to(memory_format=memory_format_for(teacher))
    return method


def plain_loop(method, data, epochs: int, batch: int, loss_of) -> float:
    params = method.trainable_parameters()
    opt = torch.optim.AdamW(params, lr=2e-3, weight_decay=1e-4, foreach=True)  # as kdbench's fit
    steps = epochs * -(-len(data.train) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.15)
    gen = torch.Generator().manual_seed(0)
    x_all = data.train.x.contiguous(memory_format=memory_format_for(method.deployable()))
    start = time.perf_counter()
    for _ in range(epochs):
        method.train()
        for idx in torch.randperm(len(data.train), generator=gen).split(batch):
            loss = loss_of(x_all[idx], data.train.y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        method.eval()
        with torch.no_grad():
            for i in range(0, len(data.val), 256):
                method.deployable()(data.val.x[i:i + 256])
    return time.perf_counter() - start


def recomputing(plugins, name, data, epochs, batch) -> float:
    method = build(plugins, name, data.info)
    if name == "hinton":  # written out by hand: no kdbench code in the step
        teacher, student, T, alpha = method.teacher, method.student, 4.0, 0.9

        def loss_of(x, y):
            with torch.no_grad():
                t = teacher(x)
            s = student(x)
            kd = F.kl_div(F.log_softmax(s / T, 1), F.log_softmax(t / T, 1), reduction="batchmean",
                          log_target=True) * T * T
            return (1 - alpha) * F.cross_entropy(s, y) + alpha * kd
    else:
        def loss_of(x, y):  # cached_teacher stays None: the method computes its teacher live
            return method(x, y)["loss"]
    seconds = plain_loop(method, data, epochs, batch, loss_of)
    method.release()
    return seconds


def student_only(plugins, name, data, epochs, batch) -> float:
    method = build(plugins, name, data.info)
    student = method.student
    seconds = plain_loop(method, data, epochs, batch, lambda x, y: F.cross_entropy(student(x), y))
    method.release()
    return seconds


def kdbench_job(plugins, name, data, epochs, batch, shared: bool = False) -> float:
    """``shared``: the teacher's outputs were already computed by an earlier job of the same teacher and
    training set (every job after the first of a seed and fraction in kdbench's cross product)."""
    method = build(plugins, name, data.info)
    cache = TeacherOutputCache()
    if shared:
        cache.outputs(method, "bench", data.train.x.contiguous(memory_format=memory_format_for(method.deployable())),
                      batch)
    start = time.perf_counter()
    fit(method, data.train, data.val, TrainConfig(epochs=epochs, batch_size=batch, lr=2e-3),
        teacher_cache=cache, data_id="bench")
    seconds = time.perf_counter() - start
    method.release()
    return seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=8, help="kdbench's default student epochs")
    ap.add_argument("--steps", type=int, default=10, help="training steps per epoch")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    plugins = load_plugins()
    data = synthetic(n_train=args.steps * args.batch, n_val=256, n_test=8, image_size=SIZE)
    lines = ["| method | (a) recomputing loop, s | (b) kdbench, first job of its teacher, s | "
             "(b') kdbench, later jobs, s | (c) student only, s | (b) / (a) speed | (b') / (a) speed | "
             "(b) / (c) speed | (b') / (c) speed |", "|---|---|---|---|---|---|---|---|---|"]
    for name in args.methods.split(","):
        for run in (recomputing, kdbench_job, student_only):  # warm-up
            run(plugins, name, data, 1, args.batch)
        times = {"a": [], "b": [], "s": [], "c": []}
        for _ in range(args.rounds):
            times["a"].append(recomputing(plugins, name, data, args.epochs, args.batch))
            times["b"].append(kdbench_job(plugins, name, data, args.epochs, args.batch))
            times["s"].append(kdbench_job(plugins, name, data, args.epochs, args.batch, shared=True))
            times["c"].append(student_only(plugins, name, data, args.epochs, args.batch))

        def ratio(num: str, den: str) -> str:
            r = [x / y for x, y in zip(times[num], times[den])]
            return f"**{statistics.median(r):.2f}x** ({min(r):.2f}-{max(r):.2f})"

        a, b, s, c = (statistics.median(times[k]) for k in "absc")
        lines.append(f"| {name} | {a:.2f} | {b:.2f} | {s:.2f} | {c:.2f} | {ratio('a', 'b')} | {ratio('a', 's')} | "
                     f"{ratio('c', 'b')} | {ratio('c', 's')} |")
        print(lines[-1], flush=True)
    table = "\n".join(lines)
    images = args.steps * args.batch
    print(table)
    if args.write:
        write_section("teacher-cache", (
            f"## Teacher-output cache\n\nOne job of {args.epochs} epochs, resnet18 -> mobilenetv3_small_050, "
            f"{SIZE}x{SIZE}, batch {args.batch}, {images} training images, 256 validation images, CPU; median of "
            f"{args.rounds} rounds (range in brackets), the three loops alternated in one process. "
            f"`python benchmarks/perf/teacher_cache.py --write`. {machine()}.\n\n{table}\n\n"
            f"Targets: kdbench / (a) >= 1.4x for hinton and dkd; kdbench / (c) >= 0.85x (speed relative to the "
            f"loop with no teacher). (b) pays the one teacher pass over the training set; (b') finds it done by "
            f"an earlier job of the same teacher, seed and fraction, as every later method of a run does. All "
            f"loops use kdbench's memory formats (channels-last for the MobileNet student on CPU). e2kd's "
            f"student Grad-CAM needs a double backward, which no cache removes."))


if __name__ == "__main__":
    main()
