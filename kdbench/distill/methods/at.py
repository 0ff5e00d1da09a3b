"""Attention transfer: match normalised spatial attention maps of matched stages.

The common code variant (Zagoruyko & Komodakis' repository, RepDistiller, mdistiller):
``at(f) = normalize(mean_c(|f|^p).flatten())``, per stage ``mean((at_s - at_t)^2)``,
``loss = task + beta * sum over stages``, beta=1000, p=2. Stages are, as in the
references, every stage after the stem (mdistiller ``feats[1:]``, RepDistiller
``feat[1:-1]``: the three stages of a CIFAR ResNet, the four of an ImageNet one), paired by
depth from the deepest when the two networks have different counts; maps of different
sizes are average-pooled to the smaller. ``stages=k`` takes only the last k instead.

A pair whose (pooled) maps are 1x1 is dropped: a one-value map normalises to 1 for every
image, so its term is identically 0 (at 28-32 px the last stage of a ResNet or MobileNet
is 1x1). When no pair of at least 2x2 is left the method refuses to run, naming the
sizes, rather than train as plain cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kdbench.distill.features import (
    align,
    all_matched_stages,
    as_map,
    matched_stages,
    probe_outputs,
)
from kdbench.distill.losses import task_loss
from kdbench.distill.methods.base import Distiller, require
from kdbench.errors import ConfigError


def attention_map(f: torch.Tensor, p: float) -> torch.Tensor:
    """``normalize(mean_c |f_c|^p)`` flattened: the paper's map; for p=2 identical to the references' ``f.pow(p)``,
    and defined (not NaN) for any p > 0 on features that can be negative (MobileNet's linear bottlenecks)."""
    return F.normalize(f.abs().pow(p).mean(1).flatten(1))


class AttentionTransfer(Distiller):
    """Attention transfer between matched stages (Zagoruyko & Komodakis, 2017)."""

    method_name = "at"
    paper = "Zagoruyko & Komodakis, Paying More Attention to Attention, ICLR 2017 (code variant: beta=1000, p=2)"
    defaults = {"beta": 1000.0, "p": 2.0, "stages": 0}  # 0: every stage after the stem
    code_version = "2"  # "2": every stage after the stem, as the references, instead of the last three
    required_terms = ("at",)
    teacher_cacheable = True
    teacher_live = False

    @classmethod
    def check_options(cls, opts):
        require("at", opts["beta"] > 0, f"beta={opts['beta']} must be > 0")
        require("at", opts["p"] > 0, f"p={opts['p']} must be > 0")
        require("at", opts["stages"] >= 0,
                f"stages={opts['stages']} must be 0 (every stage after the stem) or a count of last stages")

    def __init__(self, student, teacher, info, **options):
        super().__init__(student, teacher, info, **options)
        k = self.opts["stages"]
        pairs = all_matched_stages(student, teacher) if k == 0 else matched_stages(student, teacher, k)
        self.pairs = informative_pairs(student, teacher, pairs, info,
                                       hint="use larger images" + (" or at.stages=0 (every stage)" if k else ""))
        self._s_tap = self.tap(student, [s for s, _ in self.pairs])
        self._t_tap = self.tap(teacher, [t for _, t in self.pairs])

    def at_loss(self, teacher: dict):
        total = 0.0
        for s, t in self.pairs:
            fs, ft = align(as_map(self._s_tap[s], self.student), as_map(teacher[f"feature:{t}"], self.teacher))
            total = total + (attention_map(fs, self.opts["p"]) - attention_map(ft, self.opts["p"])).pow(2).mean()
        return total

    def forward(self, x, y):
        teacher = self.from_teacher(x)
        logits = self.student(x)
        ce = task_loss(logits, y, self.task)
        at = self.at_loss(teacher)
        return {"loss": ce + self.opts["beta"] * at, "logits": logits, "task": ce, "at": at}


def informative_pairs(student, teacher, pairs, info, hint="use larger images"):
    """The stage pairs whose maps, pooled to the smaller of the two, are at least 2x2."""
    example = torch.zeros(1, info.in_chans, info.image_size, info.image_size,
                          device=next(student.parameters()).device)
    s_out = probe_outputs(student, [s for s, _ in pairs], example)
    t_out = probe_outputs(teacher, [t for _, t in pairs], example)
    sizes = {(s, t): min(*as_map(s_out[s], student).shape[-2:], *as_map(t_out[t], teacher).shape[-2:])
             for s, t in pairs}
    kept = [pair for pair in pairs if sizes[pair] >= 2]
    if not kept:
        listed = ", ".join(f"{s}/{t} {n}x{n}" for (s, t), n in sizes.items())
        raise ConfigError(f"at: every matched stage pair is 1x1 at {info.image_size} px ({listed}), so every "
                          f"attention term would be 0; {hint}")
    return kept
