"""The training loop shared by teachers and every KD method.

Data are in-memory tensors, so batches are index slices (no DataLoader overhead on
small images). The model kept is the epoch with the best validation score (accuracy, or
macro AUC for multilabel), restored at the end.

Models and inputs use channels-last where it is faster: on GPUs, and on CPUs for models with
depthwise convolutions (the MobileNet students train 2x faster; a resnet18 would be slower). On CUDA
the whole split is moved to the GPU once (no host-to-device copy per batch, so no
pinned-memory loader is needed for in-memory datasets), and ``amp`` trains under
autocast: bfloat16 where the GPU supports it, else float16 with a gradient scaler. The teacher runs under ``torch.no_grad()`` rather than ``inference_mode``: its
logits enter the student's loss, and inference-mode tensors cannot be saved for backward.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from kdbench.data.contract import Split
from kdbench.distill.methods.base import Distiller
from kdbench.distill.methods.term_check import check_terms_move_student, terms_to_check
from kdbench.distill.models import memory_format_for
from kdbench.distill.teacher_cache import TeacherOutputCache, batch_of
from kdbench.errors import KdbenchError
from kdbench.evaluate.predictive import predict_logits
from kdbench.evaluate.selection import selection_score


class NonFiniteLossError(KdbenchError):
    """The loss became NaN or inf: recorded as a failed job."""


class DivergedError(KdbenchError):
    """The loss grew far beyond where it started without becoming NaN: recorded as a failed job.

    A learning rate that is far too high can throw the weights to where the loss is
    1e12 yet finite; the best-validation epoch would then be an untrained model reported
    as ``ok``.
    """


#: Images of the batch the float64 term check re-runs (methods.term_check). Whether a term
#: reaches the student does not depend on how many images show it; memory does.
TERM_CHECK_IMAGES = 16

#: A step's loss above this multiple of the first step's loss (floored at 1) is divergence.
#: Honest training only lowers the loss; DKD's warm-up ramp adds at most ~10x.
DIVERGENCE_FACTOR = 1e3


@dataclass
class TrainConfig:
    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    device: str = "cpu"
    seed: int = 0
    augment: bool = False
    amp: bool = False
    selection: str = "accuracy"  # the validation score that picks the kept epoch (evaluate.selection)


@dataclass
class TrainResult:
    seconds: float
    best_epoch: int
    best_val: float
    history: list[dict] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def batches(n: int, batch_size: int, generator: torch.Generator | None = None):
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def augment_batch(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Light augmentation: a random horizontal flip and a shift of up to 1/16 of the side per image.

    Shifts pad with the border pixels (no wrap-around). Random numbers come from the
    training generator, so augmented runs stay deterministic.
    """
    b, _, h, w = x.shape
    p = max(1, h // 16)
    flip = torch.rand(b, generator=generator) < 0.5
    x = torch.where(flip.to(x.device)[:, None, None, None], x.flip(-1), x)
    padded = torch.nn.functional.pad(x, (p, p, p, p), mode="replicate")
    dy = torch.randint(0, 2 * p + 1, (b,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * p + 1, (b,), generator=generator).to(x.device)
    rows = (torch.arange(h, device=x.device)[None, :] + dy[:, None])[:, :, None]
    cols = (torch.arange(w, device=x.device)[None, :] + dx[:, None])[:, None, :]
    out = padded[torch.arange(b, device=x.device)[:, None, None], :, rows, cols]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def fit(method: Distiller, train: Split, val: Split, cfg: TrainConfig,
        on_epoch: Callable[[int, dict], None] | None = None, teacher_cache: TeacherOutputCache | None = None,
        data_id: str = "") -> TrainResult:
    """Train ``method`` (its student and extra parts); keep the best validation epoch.

    With a ``teacher_cache`` and no augmentation, the teacher's outputs for ``train``
    (identified by ``data_id``: same id, same images in the same order) are computed once
    and read from the cache on every step; the rows are bit-identical on CPU.
    """
    device = torch.device(cfg.device)
    cuda = device.type == "cuda"
    method.to(device)
    # Channels-last where it is faster (models.memory_format_for): GPUs, and on CPUs models with
    # depthwise convolutions (MobileNet students); a frozen teacher gets its own format.
    fmt = memory_format_for(method.deployable(), device)
    method.to(memory_format=fmt)
    if method.teacher is not None:
        method.teacher.to(memory_format=memory_format_for(method.teacher, device))
    use_amp = cfg.amp and cuda
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    model = method.deployable()
    params = method.trainable_parameters()
    # foreach: one multi-tensor update instead of a Python loop over ~150 tensors; on CPU PyTorch
    # defaults to the loop. Same arithmetic, bit-identical weights (tests/test_optimizer.py).
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
    steps_per_epoch = max(1, math.ceil(len(train) / cfg.batch_size))
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(total, 1), pct_start=0.15)
    gen = torch.Generator().manual_seed(cfg.seed)
    x_all, y_all = train.x.to(device), train.y.to(device)
    x_all = x_all.contiguous(memory_format=fmt)
    best_state, best_val, best_epoch, history = None, -math.inf, -1, []
    start = time.perf_counter()
    cached = None
    if teacher_cache is not None and not cfg.augment:  # augmented batches are new images every time
        cached = teacher_cache.outputs(method, data_id, x_all, cfg.batch_size,
                                       autocast=lambda: torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp))
    step = 0
    first_loss: float | None = None
    checked: set[str] = set()  # loss terms proven to move the student (see methods.term_check)
    for epoch in range(cfg.epochs):
        method.train()
        method.epoch = epoch
        sums: dict[str, float] = {}
        for idx in batches(len(train), cfg.batch_size, gen):
            idx = idx.to(device)
            method.progress = step / max(total, 1)
            xb = augment_batch(x_all[idx], gen) if cfg.augment else x_all[idx]
            method.cached_teacher = batch_of(cached, idx) if cached is not None else None
            try:
                with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                    out = method(xb, y_all[idx])
            finally:  # the term check below recomputes the teacher itself, in float64
                method.cached_teacher = None
            loss = out["loss"].float()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise NonFiniteLossError(f"loss became {value} at epoch {epoch + 1}, step {step + 1}; "
                                         f"lower the learning rate or check the method's options")
            first_loss = value if first_loss is None else first_loss
            if value > DIVERGENCE_FACTOR * max(first_loss, 1.0):
                raise DivergedError(f"training diverged: loss {value:.3g} at epoch {epoch + 1}, step {step + 1} is "
                                    f"over {DIVERGENCE_FACTOR:g}x the first step's {first_loss:.3g}; "
                                    f"lower the learning rate (--lr)")
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            if not checked.issuperset(terms_to_check(method, out)):  # a term's first step: prove it trains
                n = TERM_CHECK_IMAGES  # a sub-batch: float64 graphs of a whole batch cost ~0.7 GB for MED-TEX
                teacher_batch = batch_of(cached, idx[:n]) if cached is not None else None
                checked = check_terms_move_student(method, xb[:n], y_all[idx][:n], checked, teacher_batch)
            step += 1
            for k, v in out.items():
                if k != "logits" and v.dim() == 0:
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
        score = selection_score(predict_logits(model, val.x, device=device), val.y, method.task, cfg.selection)
        record = {"epoch": epoch + 1, "val": score, **{k: v / steps_per_epoch for k, v in sums.items()}}
        if cfg.selection != "accuracy":  # "val" is then AUC, or minus the validation loss
            record["selection"] = cfg.selection
        history.append(record)
        if score > best_val or best_state is None:
            best_val, best_epoch = score, epoch + 1
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}  # cheaper than deepcopy
        if on_epoch:
            on_epoch(epoch, record)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainResult(time.perf_counter() - start, best_epoch, float(best_val), history)


def freeze(model: nn.Module) -> nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
