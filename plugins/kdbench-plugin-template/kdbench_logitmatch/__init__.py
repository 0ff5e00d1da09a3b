"""A kdbench plugin in one file: logit matching (Ba & Caruana, "Do Deep Nets Really Need
to be Deep?", NeurIPS 2014): the student regresses the teacher's logits with MSE."""

import torch.nn.functional as F

# Everything a plugin needs is in kdbench.api, kdbench's public, versioned plugin interface.
from kdbench.api import Distiller, hookimpl, require, task_loss


class LogitMatch(Distiller):
    """Student regresses the teacher's logits (MSE), plus the task loss."""

    method_name = "logitmatch"
    paper = "Ba & Caruana, Do Deep Nets Really Need to be Deep?, NeurIPS 2014"
    defaults = {"weight": 1.0}  # every option and its default: --method-opt logitmatch.weight=0.5 sets it
    required_terms = ("mse",)  # checked at the first step: it must give the student a gradient
    teacher_cacheable = True  # it reads the teacher only through teacher_logits: computed once per training set

    @classmethod
    def check_options(cls, opts):
        """Runs at pre-flight: a value outside the domain is one line before any training."""
        require("logitmatch", opts["weight"] > 0, f"weight must be > 0 (weight=0 is scratch), got {opts['weight']}")

    def forward(self, x, y):
        t_logits = self.teacher_logits(x)
        logits = self.student(x)
        ce = task_loss(logits, y, self.task)
        mse = F.mse_loss(logits, t_logits)
        return {"loss": ce + self.opts["weight"] * mse, "logits": logits, "task": ce, "mse": mse}


@hookimpl
def register_methods(register):
    register("logitmatch", LogitMatch)
