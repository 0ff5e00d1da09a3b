"""Decoupled KD: target-class (TCKD) and non-target-class (NCKD) terms weighted apart.

Follows mdistiller's reference implementation (Zhao et al. 2022): alpha=1, beta=8, T=4,
``loss = task + min(progress / warmup, 1) * (alpha * TCKD + beta * NCKD)``. The paper
warms up over 20 of 240 epochs; kdbench states the warm-up as that share of training
(``warmup=0.083``) so that short runs keep the same schedule shape. Multilabel is
refused: DKD needs one target class per image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..losses import task_loss
from .base import Distiller


def dkd_loss(s_logits, t_logits, target, alpha, beta, T):
    gt = F.one_hot(target, s_logits.shape[1]).bool()
    p_s = F.softmax(s_logits / T, dim=1)
    p_t = F.softmax(t_logits / T, dim=1)
    b_s = torch.stack([(p_s * gt).sum(1), (p_s * ~gt).sum(1)], dim=1)
    b_t = torch.stack([(p_t * gt).sum(1), (p_t * ~gt).sum(1)], dim=1)
    tckd = F.kl_div(torch.log(b_s.clamp_min(1e-12)), b_t, reduction="batchmean") * T * T
    log_s_nt = F.log_softmax(s_logits / T - 1000.0 * gt, dim=1)
    p_t_nt = F.softmax(t_logits / T - 1000.0 * gt, dim=1)
    nckd = F.kl_div(log_s_nt, p_t_nt, reduction="batchmean") * T * T
    return alpha * tckd + beta * nckd, tckd, nckd


class DKD(Distiller):
    """Decoupled knowledge distillation (Zhao et al., CVPR 2022)."""

    method_name = "dkd"
    paper = "Zhao et al., Decoupled Knowledge Distillation, CVPR 2022 (alpha=1, beta=8, T=4, warm-up 20/240 epochs)"
    defaults = {"alpha": 1.0, "beta": 8.0, "T": 4.0, "warmup": 0.083}
    tasks = ("binary", "multiclass")

    def forward(self, x, y):
        t_logits = self.teacher_logits(x)
        logits = self.student(x)
        ce = task_loss(logits, y, self.task)
        o = self.opts
        kd, tckd, nckd = dkd_loss(logits, t_logits, y, o["alpha"], o["beta"], o["T"])
        ramp = min(self.progress / o["warmup"], 1.0) if o["warmup"] > 0 else 1.0
        return {"loss": ce + ramp * kd, "logits": logits, "task": ce.detach(),
                "tckd": tckd.detach(), "nckd": nckd.detach()}
