"""Decoupled KD: target-class (TCKD) and non-target-class (NCKD) terms weighted apart.

Follows mdistiller's reference implementation (Zhao et al. 2022): alpha=1, beta=8, T=4,
``loss = task + min(progress / warmup, 1) * (alpha * TCKD + beta * NCKD)``. The paper
warms up over 20 of 240 epochs; kdbench states the warm-up as that share of training
(``warmup=0.083``) so that short runs keep the same schedule shape.

Deliberate difference from the reference: mdistiller takes ``torch.log`` of the binary
(target, rest) probabilities, which is ``-inf`` once a probability underflows; kdbench
computes the same quantities in log space (``log_softmax`` and ``logsumexp``), so the
values agree wherever the reference is finite and TCKD keeps its gradient for a
saturated student. Refused: multilabel (DKD needs one target class per image) and tasks
with two classes, where the non-target distribution has a single class, NCKD is
identically 0 and DKD would silently be ``task + alpha * TCKD``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kdbench.distill.losses import task_loss
from kdbench.distill.methods.base import Distiller, require
from kdbench.errors import UnsupportedTaskError


def dkd_loss(s_logits, t_logits, target, alpha, beta, T):
    """``(alpha * TCKD + beta * NCKD, TCKD, NCKD)``, each KL ``batchmean`` times ``T^2``."""
    gt = F.one_hot(target, s_logits.shape[1]).bool()

    def log_binary(logits):  # log of (p_target, p_rest) at temperature T, in log space
        z = logits / T
        log_all = torch.logsumexp(z, dim=1)
        log_target = z.masked_fill(~gt, float("-inf")).logsumexp(dim=1) - log_all
        log_rest = z.masked_fill(gt, float("-inf")).logsumexp(dim=1) - log_all
        return torch.stack([log_target, log_rest], dim=1)

    tckd = F.kl_div(log_binary(s_logits), log_binary(t_logits), reduction="batchmean", log_target=True) * T * T
    log_s_nt = F.log_softmax(s_logits / T - 1000.0 * gt, dim=1)
    log_t_nt = F.log_softmax(t_logits / T - 1000.0 * gt, dim=1)
    nckd = F.kl_div(log_s_nt, log_t_nt, reduction="batchmean", log_target=True) * T * T
    return alpha * tckd + beta * nckd, tckd, nckd


class DKD(Distiller):
    """Decoupled knowledge distillation (Zhao et al., CVPR 2022)."""

    method_name = "dkd"
    paper = "Zhao et al., Decoupled Knowledge Distillation, CVPR 2022 (alpha=1, beta=8, T=4, warm-up 20/240 epochs)"
    defaults = {"alpha": 1.0, "beta": 8.0, "T": 4.0, "warmup": 0.083}
    tasks = ("binary", "multiclass")
    required_terms = ("tckd", "nckd")
    teacher_cacheable = True
    teacher_live = False

    def __init__(self, student, teacher, info, **options):
        super().__init__(student, teacher, info, **options)
        if info.num_classes < 3:
            raise UnsupportedTaskError(
                f"method dkd needs at least 3 classes, and {info.name} has {info.num_classes}: with one non-target "
                f"class NCKD is identically 0 and DKD reduces to task + alpha*TCKD (use hinton for 2 classes)")

    @classmethod
    def check_options(cls, opts):
        require("dkd", opts["T"] > 0, f"T={opts['T']} must be > 0")
        require("dkd", opts["alpha"] > 0 and opts["beta"] > 0,
                f"alpha={opts['alpha']} and beta={opts['beta']} must be > 0 (a zero weight drops a DKD term)")
        require("dkd", 0 <= opts["warmup"] <= 1, f"warmup={opts['warmup']} must be a share of training in [0, 1]")

    def forward(self, x, y):
        t_logits = self.teacher_logits(x)
        logits = self.student(x)
        ce = task_loss(logits, y, self.task)
        o = self.opts
        kd, tckd, nckd = dkd_loss(logits, t_logits, y, o["alpha"], o["beta"], o["T"])
        ramp = min(self.progress / o["warmup"], 1.0) if o["warmup"] > 0 else 1.0
        return {"loss": ce + ramp * kd, "logits": logits, "task": ce, "tckd": tckd, "nckd": nckd}
