"""FitNets: a hint on a middle stage, matched through a 1x1-conv + BN + ReLU regressor (MSE).

Default: one stage, ``task + beta * hint`` trained jointly from the start (the
RepDistiller/mdistiller variant, beta=100), because it gives FitNets the same epoch
budget and schedule as every other method in a comparison. ``two_stage=true`` follows
Romero et al.: the first ``hint_fraction`` of the epochs train the student only on the
hint, the rest on Hinton KD (T, alpha).

The regressor is RepDistiller's and mdistiller's ``ConvReg`` with ``use_relu=True``:
1x1 convolution (with bias), batch norm, ReLU. For ResNet and plain-CNN teachers the
hinted stage is the output of a ReLU block, so the ReLU keeps the regression target's sign
structure; a MobileNet teacher's stage ends in a linear bottleneck and can be negative,
which the references' regressor (the same ReLU) does not handle either.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from kdbench.distill.features import align, as_map, pick_module, probe_channels
from kdbench.distill.losses import kd_loss, task_loss
from kdbench.distill.methods.base import Distiller, require
from kdbench.distill.methods.hinton import check_kd_options


class FitNets(Distiller):
    """Hint-based KD on a middle stage (Romero et al., 2015)."""

    method_name = "fitnets"
    paper = "Romero et al., FitNets: Hints for Thin Deep Nets, ICLR 2015; beta=100 from RepDistiller/mdistiller"
    defaults = {"beta": 100.0, "student_layer": "middle", "teacher_layer": "middle",
                "two_stage": False, "hint_fraction": 0.3, "T": 4.0, "alpha": 0.9}
    required_terms = ("hint", "kd")  # kd appears in the second stage of two_stage training only
    teacher_cacheable = True
    teacher_live = False

    @classmethod
    def check_options(cls, opts):
        require("fitnets", opts["beta"] > 0, f"beta={opts['beta']} must be > 0 (beta=0 drops the hint)")
        require("fitnets", 0 < opts["hint_fraction"] < 1, f"hint_fraction={opts['hint_fraction']} must be in (0, 1)")
        check_kd_options("fitnets", opts)

    def __init__(self, student, teacher, info, **options):
        super().__init__(student, teacher, info, **options)
        self.s_layer = pick_module(student, self.opts["student_layer"])
        self.t_layer = pick_module(teacher, self.opts["teacher_layer"])
        (cs,) = probe_channels(student, [self.s_layer], info.in_chans, info.image_size)
        (ct,) = probe_channels(teacher, [self.t_layer], info.in_chans, info.image_size)
        self.regressor = nn.Sequential(nn.Conv2d(cs, ct, 1), nn.BatchNorm2d(ct), nn.ReLU())
        self._s_tap = self.tap(student, [self.s_layer])
        self._t_tap = self.tap(teacher, [self.t_layer])

    def hint_loss(self, t: dict):
        fs = self.regressor(as_map(self._s_tap[self.s_layer], self.student))
        ft = as_map(t[f"feature:{self.t_layer}"], self.teacher)
        fs, ft = align(fs, ft)
        return F.mse_loss(fs, ft)

    def forward(self, x, y):
        t = self.from_teacher(x)
        t_logits = t["logits"]
        logits = self.student(x)
        hint = self.hint_loss(t)
        if self.opts["two_stage"]:
            if self.progress < self.opts["hint_fraction"]:
                return {"loss": hint, "logits": logits, "hint": hint}
            ce = task_loss(logits, y, self.task)
            kd = kd_loss(logits, t_logits, self.opts["T"], self.task)
            a = self.opts["alpha"]
            return {"loss": (1 - a) * ce + a * kd, "logits": logits, "task": ce, "kd": kd}
        ce = task_loss(logits, y, self.task)
        return {"loss": ce + self.opts["beta"] * hint, "logits": logits, "task": ce, "hint": hint}
