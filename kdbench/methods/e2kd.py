"""e2KD, explanation-enhanced KD: Hinton KD plus agreement of Grad-CAM maps.

``loss = hinton + lam * (1 - cos(GradCAM_t, GradCAM_s))`` (Parchami-Araghi et al., "Good
Teachers Explain", ECCV 2024). Both maps explain the teacher's predicted class (for
multilabel: its top-scoring label) at the last stage of each network, and are computed
in-graph so the student is trained to explain like its teacher. Maps of different sizes
are average-pooled to the smaller.
"""

from __future__ import annotations

import torch

from ..features import FeatureTap, align, as_map, feature_modules, pick_module
from ..gradcam import cosine_similarity_maps, gradcam_from, gradcam_layer
from ..losses import kd_loss, task_loss
from .base import Distiller


class E2KD(Distiller):
    """Hinton KD plus Grad-CAM agreement with the teacher (e2KD)."""

    method_name = "e2kd"
    paper = ("Parchami-Araghi et al., Good Teachers Explain: Explanation-Enhanced Knowledge Distillation, ECCV 2024; "
             "lam=1 is kdbench's choice, not a value taken from the paper")
    defaults = {"T": 4.0, "alpha": 0.9, "lam": 1.0, "student_layer": "last", "teacher_layer": "last"}

    def __init__(self, student, teacher, info, **options):
        super().__init__(student, teacher, info, **options)
        example = torch.zeros(1, info.in_chans, info.image_size, info.image_size,
                              device=next(student.parameters()).device)
        self.s_layer = self._layer(student, self.opts["student_layer"], example)
        self.t_layer = self._layer(teacher, self.opts["teacher_layer"], example)
        if self.opts["student_layer"] == "last":
            self.s_layer = self._differentiable_layer(student, self.s_layer, example)
        self._s_tap = self.tap(student, [self.s_layer])
        self._t_tap = self.tap(teacher, [self.t_layer], replace_output=True)

    @staticmethod
    def _layer(model, which, example):
        """``last`` means the layer Grad-CAM explains (ViTs: the last block's norm1)."""
        return gradcam_layer(model, example)[0] if which == "last" else pick_module(model, which)

    @staticmethod
    def _differentiable_layer(model, first: str, example) -> str:
        """The first stage, from ``first`` down to the last, whose Grad-CAM can be trained through.

        The map enters the loss, so its gradient needs a double backward through every
        layer above it; PyTorch lacks that for some activations (hardsigmoid in
        MobileNetV3's squeeze-excite blocks), so such stages are skipped.
        """
        names = feature_modules(model)
        candidates = names[names.index(first):] if first in names else [first]
        was_training = model.training
        model.eval()
        try:
            for name in candidates:
                tap = FeatureTap(model, [name])
                try:
                    with torch.enable_grad():
                        logits = model(example.expand(2, *example.shape[1:]).clone())
                        cam = gradcam_from(logits, tap[name], torch.zeros(2, dtype=torch.long, device=logits.device),
                                           create_graph=True, to_map=lambda t: as_map(t, model))
                        cam.sum().backward()
                    return name
                except RuntimeError as exc:
                    if "not implemented" not in str(exc):
                        raise
                finally:
                    tap.remove()
                    model.zero_grad(set_to_none=True)
        finally:
            model.train(was_training)
        return candidates[-1]

    def forward(self, x, y):
        with torch.enable_grad():
            t_logits = self.teacher(x)
            target = t_logits.argmax(dim=1)
            t_cam = gradcam_from(t_logits, self._t_tap[self.t_layer], target, create_graph=False,
                                 to_map=lambda f: as_map(f, self.teacher)).detach()
        t_logits = t_logits.detach()
        logits = self.student(x)
        ce = task_loss(logits, y, self.task)
        kd = kd_loss(logits, t_logits, self.opts["T"], self.task)
        if self.training:
            s_cam = gradcam_from(logits, self._s_tap[self.s_layer], target, create_graph=True,
                                 to_map=lambda f: as_map(f, self.student))
            s_cam, t_cam = align(s_cam[:, None], t_cam[:, None])
            expl = (1 - cosine_similarity_maps(s_cam, t_cam)).mean()
        else:
            expl = torch.zeros((), device=x.device)
        a = self.opts["alpha"]
        loss = (1 - a) * ce + a * kd + self.opts["lam"] * expl
        return {"loss": loss, "logits": logits, "task": ce.detach(), "kd": kd.detach(), "expl": expl.detach()}
