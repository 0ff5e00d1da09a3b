"""A kdbench plugin in one file: logit matching (Ba & Caruana, "Do Deep Nets Really Need
to be Deep?", NeurIPS 2014): the student regresses the teacher's logits with MSE."""

import torch.nn.functional as F

import kdbench
from kdbench.api import Distiller, task_loss


class LogitMatch(Distiller):
    """Student regresses the teacher's logits (MSE), plus the task loss."""

    method_name = "logitmatch"
    paper = "Ba & Caruana, Do Deep Nets Really Need to be Deep?, NeurIPS 2014"
    defaults = {"weight": 1.0}
    required_terms = ("mse",)  # checked at the first step: it must give the student a gradient

    def forward(self, x, y):
        t_logits = self.teacher_logits(x)
        logits = self.student(x)
        ce = task_loss(logits, y, self.task)
        mse = F.mse_loss(logits, t_logits)
        return {"loss": ce + self.opts["weight"] * mse, "logits": logits, "task": ce, "mse": mse}


@kdbench.hookimpl
def register_methods(register):
    register("logitmatch", LogitMatch)
