"""Explanation agreement: does the student look where its teacher looks?

e2KD's measure (Parchami-Araghi et al., ECCV 2024): the cosine similarity between the
teacher's and the student's Grad-CAM of the teacher's predicted class (multilabel: its
top-scoring label), both resized bilinearly to the input resolution, averaged over the
fixed explanation subset. 1 means the same evidence, 0 unrelated maps. Every student gets
it, whatever its method, so e2KD's claim (and any other method's side effect on where
the student looks) can be read off one column.
"""

from __future__ import annotations

import torch

from kdbench.distill.features import FeatureTap, as_map
from kdbench.distill.gradcam import cosine_similarity_maps, gradcam_from, gradcam_layer
from kdbench.distill.methods.e2kd import cam_at_input


def gradcam_at_input(model, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Grad-CAM of ``target`` at kdbench's Grad-CAM layer, resized to the input: (B, 1, H, W)."""
    layer, _ = gradcam_layer(model, x[:1])
    was_training = model.training
    model.eval()
    tap = FeatureTap(model, [layer], replace_output=True)
    try:
        with torch.enable_grad():
            logits = model(x)
            cam = gradcam_from(logits, tap[layer], target, create_graph=False, to_map=lambda f: as_map(f, model))
    finally:
        tap.remove()
        model.train(was_training)
    return cam_at_input(cam.detach(), tuple(x.shape[-2:]))


def explanation_agreement(student, teacher_cam: torch.Tensor, x: torch.Tensor, target: torch.Tensor) -> float:
    """Mean cosine similarity of the student's Grad-CAM with the teacher's (``teacher_cam``, same images)."""
    student_cam = gradcam_at_input(student, x, target)
    return float(cosine_similarity_maps(student_cam, teacher_cam).mean())
