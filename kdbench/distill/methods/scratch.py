"""Scratch: the student trained on labels alone, the baseline every KD method must beat."""

from __future__ import annotations

from kdbench.distill.losses import task_loss
from kdbench.distill.methods.base import Distiller


class Scratch(Distiller):
    """Student trained on the labels only (no teacher): the baseline."""

    method_name = "scratch"
    paper = "baseline (no distillation)"
    uses_teacher = False
    required_terms = ("task",)

    def forward(self, x, y):
        logits = self.student(x)
        loss = task_loss(logits, y, self.task)
        return {"loss": loss, "logits": logits, "task": loss}
