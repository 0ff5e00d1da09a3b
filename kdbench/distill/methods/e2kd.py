"""e2KD, explanation-enhanced KD: Hinton KD plus agreement of Grad-CAM maps.

``loss = (1 - alpha) * task + alpha * T^2 * KL(p_t(T) || p_s(T)) + lam * (1 - cos(M_t, M_s))``
(Parchami-Araghi et al., "Good Teachers Explain", ECCV 2024). ``M`` is the Grad-CAM map
of the teacher's predicted class (multilabel: its top-scoring label), read at the
deepest stage of each network that is at least 7x7 (ViTs: the last block's norm1),
resized to the input resolution as the reference does (bilinear), and compared by the
cosine of the flattened maps. The student's map is computed in-graph
(``create_graph=True``), so the explanation term trains the student's weights.

Two details keep the explanation term alive on small students:

- PyTorch has no double backward for ``hardsigmoid`` (MobileNetV3's squeeze-excite
  gates), which the in-graph Grad-CAM needs; the student's ``nn.Hardsigmoid`` modules are
  replaced by timm's ``HardSigmoid`` (``relu6(x + 3) / 6``), which computes the same
  values and has one. No parameter changes, so checkpoints are unaffected.
- A 1x1 stage gives a per-image constant map, whose gradient is 0, and stages below
  7x7 barely localise (see :data:`kdbench.distill.gradcam.MIN_CAM_SIZE`); when the chosen
  layer is smaller than 4x4 the method refuses to run rather than silently reduce to
  Hinton KD.

kdbench's defaults (T=4, alpha=0.9: the Hinton defaults of every other method here,
lam=1) keep the label term so that e2KD differs from ``hinton`` only by the explanation
term. ``preset=reference`` uses the official code's configuration instead (see
:attr:`E2KD.presets` and docs/methods.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers.activations import HardSigmoid
from torch import nn

from kdbench.distill.features import as_map, pick_module, probe_outputs
from kdbench.distill.gradcam import cosine_similarity_maps, gradcam_from, gradcam_layer
from kdbench.errors import ConfigError

#: e2KD refuses to run on a Grad-CAM layer smaller than this per side (1x1 is a dead term).
MIN_SIDE = 4
from kdbench.distill.losses import kd_loss, task_loss
from kdbench.distill.methods.base import Distiller, require
from kdbench.distill.methods.hinton import check_kd_options


def make_double_differentiable(model: nn.Module) -> int:
    """Swap ``nn.Hardsigmoid`` for timm's ``HardSigmoid`` (same values, has a double backward).

    Returns how many modules were replaced.
    """
    swaps = [(name, mod) for name, mod in model.named_modules() if type(mod) is nn.Hardsigmoid]
    for name, mod in swaps:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, HardSigmoid(inplace=False))
    return len(swaps)


def cam_at_input(cam: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A (B, h, w) Grad-CAM map resized to the input resolution (B, 1, H, W), bilinear."""
    return F.interpolate(cam[:, None], size=size, mode="bilinear", align_corners=False)


class E2KD(Distiller):
    """Hinton KD plus Grad-CAM agreement with the teacher (e2KD)."""

    method_name = "e2kd"
    paper = ("Parchami-Araghi et al., Good Teachers Explain: Explanation-Enhanced Knowledge Distillation, ECCV 2024; "
             "T=4, alpha=0.9 as hinton; lam=1 is kdbench's choice (preset=reference: the official configuration)")
    defaults = {"T": 4.0, "alpha": 0.9, "lam": 1.0, "student_layer": "last", "teacher_layer": "last"}
    presets = {"reference": {"T": 1.0, "alpha": 1.0, "lam": 1.0}}
    required_terms = ("kd", "expl")
    teacher_cacheable = True
    teacher_live = False

    @classmethod
    def check_options(cls, opts):
        check_kd_options("e2kd", opts)
        require("e2kd", opts["lam"] > 0, f"lam={opts['lam']} must be > 0 (lam=0 is hinton)")

    def __init__(self, student, teacher, info, **options):
        super().__init__(student, teacher, info, **options)
        make_double_differentiable(student)
        example = torch.zeros(1, info.in_chans, info.image_size, info.image_size,
                              device=next(student.parameters()).device)
        self.s_layer = self._layer(student, self.opts["student_layer"], example, "student")
        self.t_layer = self._layer(teacher, self.opts["teacher_layer"], example, "teacher")
        self._s_tap = self.tap(student, [self.s_layer])
        self._t_tap = self.tap(teacher, [self.t_layer], replace_output=True)

    @staticmethod
    def _layer(model, which, example, role: str) -> str:
        """``last``: the layer Grad-CAM explains (deepest stage >= 7x7; ViTs: the last block's norm1)."""
        name = gradcam_layer(model, example)[0] if which == "last" else pick_module(model, which)
        out = as_map(probe_outputs(model, [name], example)[name], model)
        side = min(out.shape[-2:])
        if side < MIN_SIDE:
            raise ConfigError(
                f"e2kd: the {role}'s Grad-CAM layer {name} is {out.shape[-2]}x{out.shape[-1]} at "
                f"{example.shape[-1]} px, smaller than {MIN_SIDE}x{MIN_SIDE}, so the explanation term would "
                f"give no gradient; use larger images (image_size) or name a larger layer (e2kd.{role}_layer)")
        return name

    def teacher_target_names(self) -> list[str]:
        return ["logits", f"gradcam:{self.t_layer}"]

    def teacher_targets(self, x):
        """The teacher's logits and its Grad-CAM of its own predicted class (both frozen, per image)."""
        with torch.enable_grad():
            t_logits = self.teacher(x)
            target = t_logits.argmax(dim=1)
            t_cam = gradcam_from(t_logits, self._t_tap[self.t_layer], target, create_graph=False,
                                 to_map=lambda f: as_map(f, self.teacher)).detach()
        return {"logits": t_logits.detach(), f"gradcam:{self.t_layer}": t_cam}

    def forward(self, x, y):
        size = tuple(x.shape[-2:])
        teacher = self.from_teacher(x)
        t_logits, t_cam = teacher["logits"], teacher[f"gradcam:{self.t_layer}"]
        target = t_logits.argmax(dim=1)
        logits = self.student(x)
        ce = task_loss(logits, y, self.task)
        kd = kd_loss(logits, t_logits, self.opts["T"], self.task)
        out = {"logits": logits, "task": ce, "kd": kd}
        if self.training:
            s_cam = gradcam_from(logits, self._s_tap[self.s_layer], target, create_graph=True,
                                 to_map=lambda f: as_map(f, self.student))
            sim = cosine_similarity_maps(cam_at_input(s_cam, size), cam_at_input(t_cam, size))
            out["expl"] = (1 - sim).mean()
        a = self.opts["alpha"]
        loss = (1 - a) * ce + a * kd
        if "expl" in out:
            loss = loss + self.opts["lam"] * out["expl"]
        out["loss"] = loss
        return out
