"""A kdbench plugin in one file: logit matching (Ba & Caruana, "Do Deep Nets Really Need
to be Deep?", NeurIPS 2014): the student regresses the teacher's logits with MSE."""

import torch.nn.functional as F

import kdbench
from kdbench.losses import task_loss
from kdbench.methods import Distiller


class LogitMatch(Distiller):
    """Student regresses the teacher's logits (MSE), plus the task loss."""

    method_name = "logitmatch"
    paper = "Ba & Caruana, Do Deep Nets Really Need to be Deep?, NeurIPS 2014"
    defaults = {"weight": 1.0}

    def forward(self, x, y):
        t_logits = self.teacher_logits(x)
        logits = self.student(x)
        ce = task_loss(logits, y, self.task)
        mse = F.mse_loss(logits, t_logits)
        return {"loss": ce + self.opts["weight"] * mse, "logits": logits, "task": ce.detach(), "mse": mse.detach()}


@kdbench.hookimpl
def register_methods(register):
    register("logitmatch", LogitMatch)
