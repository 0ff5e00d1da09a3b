"""MED-TEX: distil into a student that sees the image through a learned explainer mask.

As described by Nguyen-Duc et al. (ISBI 2022; no official code is public), with the
objective written out in docs/methods.md:

- an explainer, a small encoder-decoder with skip connections whose last layer is a 1x1
  convolution with a sigmoid, scores every pixel: ``m`` in [0, 1];
- the student sees ``x_m = m * x + (1 - m) * fill`` (``fill``: the training set's
  per-pixel mean image by default) and matches the teacher's prediction, cross-entropy
  to its predicted class (BCE to its predicted label set for multilabel): L2X's
  variational bound on the information the kept pixels carry about that prediction;
- a variational-information term (VID, Ahn et al. 2019) ties the last ``vid_stages``
  stages of teacher (on ``x``) and student (on ``x_m``), through bias-free 1x1-conv
  regressors with a learned per-channel variance, as in the VID reference;
- the mask selects: a budget (:func:`area_budget`) keeps at most ``keep`` of the image,
  and a preservation term asks the frozen teacher to keep its prediction on ``x_m``, so
  the mask marks the teacher's evidence rather than a code the student could decode;
- the explainer trains only through these objectives (no labels reach it).

``loss = CE(S(x_m), argmax t) + vid_weight * VID + budget_weight * budget + preserve_weight * CE(teacher(x_m), argmax t)``

kdbench's own extra, off by default: ``mask_l1`` (a sparsity prior on the mask). The
deployed model is explainer + student (:class:`MaskedStudent`), so its parameters, FLOPs
and latency include the explainer, and its mask serves as the ``medtex-mask`` explainer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from torch import nn

from kdbench.distill.features import (
    align,
    as_map,
    feature_modules,
    matched_stages,
    probe_channels,
)
from kdbench.distill.losses import hard_targets, task_loss
from kdbench.distill.methods.base import Distiller, require


def area_budget(mask: torch.Tensor, keep: float) -> torch.Tensor:
    """``mean_b mean_i relu(sort(m_b)_i - r_i)^2``, ``r`` with ``round(keep * H * W)`` ones at the top.

    The area constraint of Fong et al. (2019), one-sided: the ``H*W - k`` smallest mask
    values are pulled to 0 and the ``k`` largest are left free. It is zero exactly when
    at most k pixels are (partly) kept, so a uniform mask of any level is penalised, and
    unlike the two-sided form it does not force the explainer to spend all k pixels:
    the surplus would go wherever keeping costs nothing (on fundus images, the black
    corners).
    """
    flat = mask.flatten(1)
    n = flat.shape[1]
    k = max(1, min(n - 1, round(keep * n)))
    return flat.sort(dim=1).values[:, : n - k].pow(2).sum(1).div(n).mean()


def _block(cin, cout):
    """Two 3x3 conv-BN-ReLU layers. Replicate padding: with zero padding the image corners
    look unlike anything else, and the mask lit them up whatever the image (measured)."""
    def conv(a, b):
        return nn.Conv2d(a, b, 3, padding=1, padding_mode="replicate", bias=False)
    return nn.Sequential(conv(cin, cout), nn.BatchNorm2d(cout), nn.ReLU(), conv(cout, cout), nn.BatchNorm2d(cout), nn.ReLU())


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

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        b = self.bottleneck(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([F.interpolate(b, size=e2.shape[-2:], mode="bilinear", align_corners=False), e2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, size=e1.shape[-2:], mode="bilinear", align_corners=False), e1], 1))
        return torch.sigmoid(self.out(d1))


FILLS = ("mean_image", "blur", "mean")


class MaskedStudent(nn.Module):
    """The deployed MED-TEX model: the student on the masked image ``m * x + (1 - m) * fill``.

    ``fill`` says what a dropped pixel becomes: ``mean_image`` (default) the training
    set's per-pixel mean image, kept as a buffer and accumulated over the training
    batches like a batch-norm running mean (so black borders stay black and a dropped
    lesion becomes average tissue); ``blur`` a Gaussian blur of the image itself (sigma
    side/8); ``mean`` the dataset mean, i.e. ``x * m`` on standardised inputs.
    """

    def __init__(self, explainer: MaskExplainer, student: nn.Module, fill: str = "mean_image",
                 in_chans: int = 3, image_size: int = 32):
        super().__init__()
        self.explainer = explainer
        self.student = student
        self.fill = fill
        self.register_buffer("fill_image", torch.zeros(1, in_chans, image_size, image_size))
        self.register_buffer("fill_seen", torch.zeros((), dtype=torch.long))
        self.feature_info = [{"num_chs": 0, "reduction": 1, "module": f"student.{m}"} for m in feature_modules(student)]

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        return self.explainer(x)

    def masked(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.fill == "mean":
            return x * mask
        if self.fill == "blur":
            sigma = max(1.0, x.shape[-1] / 8)
            k = 2 * int(2 * sigma) + 1
            return mask * x + (1 - mask) * TF.gaussian_blur(x, [k, k], [sigma, sigma])
        if self.training:  # cumulative mean over every training image seen
            with torch.no_grad():
                n, b = self.fill_seen.item(), x.shape[0]
                self.fill_image.mul_(n / (n + b)).add_(x.float().sum(0, keepdim=True) / (n + b))
                self.fill_seen.add_(b)
        return mask * x + (1 - mask) * self.fill_image.to(x.dtype)

    def forward(self, x):
        return self.student(self.masked(x, self.explainer(x)))


class VIDAdapter(nn.Module):
    """Variational information distillation for one stage pair (Ahn et al., CVPR 2019).

    As RepDistiller's ``VIDLoss``: three bias-free 1x1 convolutions (ReLU between, mid
    channels = teacher channels), ``var = softplus(log_scale) + eps`` initialised to
    ``init_var``, loss ``mean(0.5 * ((mu - t)^2 / var + log var))``.
    """

    def __init__(self, cs: int, ct: int, init_var: float = 5.0, eps: float = 1e-5):
        super().__init__()
        self.regressor = nn.Sequential(nn.Conv2d(cs, ct, 1, bias=False), nn.ReLU(), nn.Conv2d(ct, ct, 1, bias=False),
                                       nn.ReLU(), nn.Conv2d(ct, ct, 1, bias=False))
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
    defaults = {"vid_weight": 1.0, "vid_stages": 2, "explainer_width": 16, "keep": 0.1, "budget_weight": 10.0,
                "preserve_weight": 1.0, "fill": "mean_image", "mask_l1": 0.0}
    required_terms = ("task", "vid", "budget", "preserve")
    teacher_cacheable = True

    @classmethod
    def check_options(cls, opts):
        require("medtex", 0 < opts["keep"] < 1, f"keep={opts['keep']} must be a share of the image in (0, 1)")
        require("medtex", opts["budget_weight"] > 0, f"budget_weight={opts['budget_weight']} must be > 0 "
                "(without a budget the mask need not select anything)")
        require("medtex", opts["vid_weight"] > 0, f"vid_weight={opts['vid_weight']} must be > 0")
        require("medtex", opts["preserve_weight"] >= 0, f"preserve_weight={opts['preserve_weight']} must be >= 0")
        require("medtex", opts["fill"] in FILLS, f"fill={opts['fill']!r} is not one of {', '.join(FILLS)}")
        require("medtex", opts["mask_l1"] >= 0, f"mask_l1={opts['mask_l1']} must be >= 0")
        require("medtex", opts["vid_stages"] >= 1 and opts["explainer_width"] >= 1,
                "vid_stages and explainer_width must be at least 1")

    def __init__(self, student, teacher, info, **options):
        super().__init__(student, teacher, info, **options)
        self.explainer = MaskExplainer(info.in_chans, self.opts["explainer_width"])
        self.model = MaskedStudent(self.explainer, student, self.opts["fill"], info.in_chans, info.image_size)
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
        teacher = self.from_teacher(x)
        t_logits = teacher["logits"]
        mask = self.explainer(x)
        masked = self.model.masked(x, mask)
        logits = self.student(masked)
        o = self.opts
        teacher_says = hard_targets(t_logits, self.task)
        ce = task_loss(logits, teacher_says, self.task)
        vid = sum(adapter(as_map(self._s_tap[s], self.student), as_map(teacher[f"feature:{t}"], self.teacher))
                  for adapter, (s, t) in zip(self.vid, self.pairs))
        budget = area_budget(mask, o["keep"])
        loss = ce + o["vid_weight"] * vid + o["budget_weight"] * budget
        out = {"logits": logits, "task": ce, "vid": vid, "budget": budget, "mask_mean": mask.mean().detach()}
        if o["preserve_weight"] > 0:
            kept = self.teacher(masked)  # frozen teacher: the gradient reaches the explainer only
            out["preserve"] = task_loss(kept, teacher_says, self.task)
            loss = loss + o["preserve_weight"] * out["preserve"]
        if o["mask_l1"] > 0:
            out["mask_l1"] = mask.mean()
            loss = loss + o["mask_l1"] * out["mask_l1"]
        out["loss"] = loss
        return out
