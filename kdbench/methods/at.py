"""Attention transfer: match normalised spatial attention maps of matched stages.

The common code variant (Zagoruyko & Komodakis' repository, RepDistiller, mdistiller):
``at(f) = normalize(mean_c(f^p).flatten())``, per stage ``mean((at_s - at_t)^2)``,
``loss = task + beta * sum over stages``, beta=1000, p=2. Stages are the last three of
each network paired by depth; maps of different sizes are average-pooled to the smaller.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..features import align, as_map, matched_stages
from ..losses import task_loss
from .base import Distiller


def attention_map(f: torch.Tensor, p: float) -> torch.Tensor:
    return F.normalize(f.pow(p).mean(1).flatten(1))


class AttentionTransfer(Distiller):
    """Attention transfer between matched stages (Zagoruyko & Komodakis, 2017)."""

    method_name = "at"
    paper = "Zagoruyko & Komodakis, Paying More Attention to Attention, ICLR 2017 (code variant: beta=1000, p=2)"
    defaults = {"beta": 1000.0, "p": 2.0, "stages": 3}

    def __init__(self, student, teacher, info, **options):
        super().__init__(student, teacher, info, **options)
        self.pairs = matched_stages(student, teacher, self.opts["stages"])
        self._s_tap = self.tap(student, [s for s, _ in self.pairs])
        self._t_tap = self.tap(teacher, [t for _, t in self.pairs])

    def at_loss(self):
        total = 0.0
        for s, t in self.pairs:
            fs, ft = align(as_map(self._s_tap[s], self.student), as_map(self._t_tap[t], self.teacher))
            total = total + (attention_map(fs, self.opts["p"]) - attention_map(ft, self.opts["p"])).pow(2).mean()
        return total

    def forward(self, x, y):
        self.teacher_logits(x)
        logits = self.student(x)
        ce = task_loss(logits, y, self.task)
        at = self.at_loss()
        return {"loss": ce + self.opts["beta"] * at, "logits": logits, "task": ce.detach(), "at": at.detach()}
