"""Grad-CAM computed inside the autograd graph, for losses that compare explanations.

captum's LayerGradCam serves the explainer plugins; a loss term (e2KD) needs the map as
a differentiable function of the student's parameters, which captum does not give, so
this is the one place where the Grad-CAM formula is written out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .features import FeatureTap, pick_module


def gradcam_from(logits: torch.Tensor, feature: torch.Tensor, target: torch.Tensor, *,
                 create_graph: bool, to_map=lambda t: t) -> torch.Tensor:
    """``relu(sum_c mean_hw(d score / d A_c) * A_c)`` for one target index per image."""
    score = logits.gather(1, target[:, None]).sum()
    (grad,) = torch.autograd.grad(score, feature, create_graph=create_graph, retain_graph=True)
    A, G = to_map(feature), to_map(grad)
    weights = G.mean(dim=(2, 3), keepdim=True)
    return F.relu((weights * A).sum(dim=1))


def cosine_similarity_maps(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of flattened maps; two all-zero maps count as identical."""
    a, b = a.flatten(1), b.flatten(1)
    sim = F.cosine_similarity(a, b, dim=1, eps=1e-12)
    both_zero = (a.abs().sum(1) == 0) & (b.abs().sum(1) == 0)
    return torch.where(both_zero, torch.ones_like(sim), sim)


def gradcam_layer(model, example: torch.Tensor) -> tuple[str, bool]:
    """The layer Grad-CAM reads, and whether it outputs tokens rather than a map.

    CNNs: the last stage of ``feature_info``. Vision transformers: the last block's
    ``norm1`` (the input of its attention, as pytorch-grad-cam recommends), because after
    the last block only the class token reaches the head and patch tokens get no gradient.
    ``example`` is one input image batch, used for a single probing forward pass.
    """
    name = pick_module(model, "last")
    tap = FeatureTap(model, [name])
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example[:1])
        is_tokens = tap[name].dim() == 3
    finally:
        tap.remove()
        model.train(was_training)
    if is_tokens and f"{name}.norm1" in dict(model.named_modules()):
        name = f"{name}.norm1"
    return name, is_tokens
