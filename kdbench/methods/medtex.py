"""MED-TEX: distil into a student that sees the image through a learned explainer mask.

As described by Nguyen-Duc et al. (ISBI 2022; no official code is public):

- an explainer, a small encoder-decoder with skip connections whose last layer is a 1x1
  convolution with a sigmoid, scores every pixel in [0, 1];
- the student is fed ``x * mask`` (inputs are standardised, so masked pixels fall to the
  dataset mean);
- the student matches the teacher's prediction: cross-entropy to the teacher's
  predicted class (BCE to its predicted label set for multilabel);
- a variational-information term (VID, Ahn et al. 2019: Gaussian likelihood with a
  learned per-channel variance, through 1x1-conv adapters) ties the last ``vid_stages``
  stages of teacher (on ``x``) and student (on ``x * mask``);
- the explainer trains only through the student's objective.

kdbench's own additions, off by default: ``mask_l1`` (a sparsity prior on the mask).
The final explainer bias starts at +2 (mask about 0.88) so training starts from an
almost unmasked image. The deployed model is explainer + student
(:class:`MaskedStudent`), so its parameters, FLOPs and latency include the explainer, and
its mask serves as the ``medtex-mask`` explainer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..features import align, as_map, feature_modules, matched_stages, probe_channels
from ..losses import hard_targets, task_loss
from .base import Distiller


def _block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class MaskExplainer(nn.Module):
    """A two-level U-Net that outputs one [0, 1] score per pixel."""

    def __init__(self, in_chans: int, width: int = 16):
        super().__init__()
        self.enc1 = _block(in_chans, width)
        self.enc2 = _block(width, 2 * width)
        self.bottleneck = _block(2 * width, 4 * width)
        self.dec2 = _block(4 * width + 2 * width, 2 * width)
        self.dec1 = _block(2 * width + width, width)
        self.out = nn.Conv2d(width, 1, 1)
        nn.init.constant_(self.out.bias, 2.0)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        b = self.bottleneck(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([F.interpolate(b, size=e2.shape[-2:], mode="bilinear", align_corners=False), e2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, size=e1.shape[-2:], mode="bilinear", align_corners=False), e1], 1))
        return torch.sigmoid(self.out(d1))


class MaskedStudent(nn.Module):
    """The deployed MED-TEX model: ``student(x * explainer(x))``."""

    def __init__(self, explainer: MaskExplainer, student: nn.Module):
        super().__init__()
        self.explainer = explainer
        self.student = student
        self.feature_info = [{"num_chs": 0, "reduction": 1, "module": f"student.{m}"} for m in feature_modules(student)]

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        return self.explainer(x)

    def forward(self, x):
        return self.student(x * self.explainer(x))


class VIDAdapter(nn.Module):
    """Variational information distillation for one stage pair (Ahn et al., CVPR 2019)."""

    def __init__(self, cs: int, ct: int, init_var: float = 5.0, eps: float = 1e-5):
        super().__init__()
        self.regressor = nn.Sequential(nn.Conv2d(cs, ct, 1), nn.ReLU(), nn.Conv2d(ct, ct, 1), nn.ReLU(),
                                       nn.Conv2d(ct, ct, 1))
        self.log_scale = nn.Parameter(torch.full((ct,), math.log(math.expm1(init_var - eps))))
        self.eps = eps

    def forward(self, fs, ft):
        fs, ft = align(fs, ft)
        mean = self.regressor(fs)
        var = (F.softplus(self.log_scale) + self.eps)[None, :, None, None]
        return 0.5 * ((mean - ft) ** 2 / var + torch.log(var)).mean()


class MedTex(Distiller):
    """Learned-mask explainer + student, distilled with CE to teacher predictions and VID."""

    method_name = "medtex"
    paper = ("Nguyen-Duc et al., Transferring and Explaining Knowledge with Less Data from Pretrained "
             "Medical Imaging Models, ISBI 2022; VID from Ahn et al., CVPR 2019")
    defaults = {"vid_weight": 1.0, "vid_stages": 2, "explainer_width": 16, "mask_l1": 0.0}

    def __init__(self, student, teacher, info, **options):
        super().__init__(student, teacher, info, **options)
        self.explainer = MaskExplainer(info.in_chans, self.opts["explainer_width"])
        self.model = MaskedStudent(self.explainer, student)
        self.pairs = matched_stages(student, teacher, self.opts["vid_stages"])
        s_names, t_names = [s for s, _ in self.pairs], [t for _, t in self.pairs]
        cs = probe_channels(student, s_names, info.in_chans, info.image_size)
        ct = probe_channels(teacher, t_names, info.in_chans, info.image_size)
        self.vid = nn.ModuleList(VIDAdapter(a, b) for a, b in zip(cs, ct))
        self._s_tap = self.tap(student, s_names)
        self._t_tap = self.tap(teacher, t_names)

    def deployable(self):
        return self.model

    def forward(self, x, y):
        t_logits = self.teacher_logits(x)
        mask = self.explainer(x)
        logits = self.student(x * mask)
        ce = task_loss(logits, hard_targets(t_logits, self.task), self.task)
        vid = sum(adapter(as_map(self._s_tap[s], self.student), as_map(self._t_tap[t], self.teacher))
                  for adapter, (s, t) in zip(self.vid, self.pairs))
        loss = ce + self.opts["vid_weight"] * vid
        out = {"logits": logits, "task": ce.detach(), "vid": vid.detach(), "mask_mean": mask.mean().detach()}
        if self.opts["mask_l1"] > 0:
            loss = loss + self.opts["mask_l1"] * mask.mean()
        out["loss"] = loss
        return out
