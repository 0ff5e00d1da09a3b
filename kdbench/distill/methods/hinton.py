"""Hinton KD: soft teacher targets at temperature T.

``loss = (1 - alpha) * task + alpha * T^2 * KL(p_t(T) || p_s(T))`` (batchmean), with the
RepDistiller / mdistiller defaults T=4, alpha=0.9. Multilabel uses the per-label
Bernoulli form (see :mod:`kdbench.distill.losses`).
"""

from __future__ import annotations

from kdbench.distill.losses import kd_loss, task_loss
from kdbench.distill.methods.base import Distiller, require


def check_kd_options(method: str, opts) -> None:
    """T > 0, and 0 < alpha <= 1: alpha=0 would drop the KD term (the method would be scratch)."""
    require(method, opts["T"] > 0, f"T={opts['T']} must be > 0")
    require(method, 0 < opts["alpha"] <= 1, f"alpha={opts['alpha']} must be in (0, 1] (alpha=0 is scratch)")


class Hinton(Distiller):
    """Soft-target KD at temperature T (Hinton et al., 2015)."""

    method_name = "hinton"
    paper = "Hinton, Vinyals & Dean, Distilling the Knowledge in a Neural Network, 2015; defaults from RepDistiller/mdistiller"
    defaults = {"T": 4.0, "alpha": 0.9}
    required_terms = ("kd",)
    teacher_cacheable = True
    teacher_live = False

    @classmethod
    def check_options(cls, opts):
        check_kd_options(cls.method_name, opts)

    def forward(self, x, y):
        t_logits = self.teacher_logits(x)
        logits = self.student(x)
        ce = task_loss(logits, y, self.task)
        kd = kd_loss(logits, t_logits, self.opts["T"], self.task)
        a = self.opts["alpha"]
        return {"loss": (1 - a) * ce + a * kd, "logits": logits, "task": ce, "kd": kd}
