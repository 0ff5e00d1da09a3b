"""Grad-CAM computed inside the autograd graph, for losses that compare explanations.

captum's LayerGradCam serves the explainer plugins; a loss term (e2KD) needs the map as
a differentiable function of the student's parameters, which captum does not give, so
this is the one place where the Grad-CAM formula is written out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kdbench.distill.features import feature_modules, probe_outputs


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


#: Grad-CAM needs a map with some extent: stages smaller than this per side are skipped. 7 is
#: Grad-CAM's usual resolution (a ResNet's last stage at 224 px). Measured on the synthetic
#: set (32 px, trained mobilenetv3_small_050, pointing game on exact lesion masks, random
#: 0.031): its 16x16 stem 0.141, 8x8 stage 0.094, 4x4 stage 0.000, 1x1 stage constant maps.
#: The deepest stage of at least 7x7 is the deepest that still localises.
MIN_CAM_SIZE = 7


def gradcam_layer(model, example: torch.Tensor) -> tuple[str, bool]:
    """The layer Grad-CAM reads, and whether it outputs tokens rather than a map.

    CNNs: the deepest stage of ``feature_info`` whose output is at least
    ``MIN_CAM_SIZE`` pixels per side (at 28-32 px input the last stage of a ResNet or
    MobileNet is 1x1, which would make every map a constant); on images so small that no
    stage is, the stage with the largest map. Vision transformers: the
    last block's ``norm1`` (the input of its attention, as pytorch-grad-cam recommends),
    because after the last block only the class token reaches the head and patch tokens
    get no gradient. ``example`` is an input batch, used for one probing forward pass.
    """
    names = feature_modules(model)
    outputs = probe_outputs(model, names, example[:1])
    last = names[-1]
    if outputs[last].dim() == 3:
        name = f"{last}.norm1" if f"{last}.norm1" in dict(model.named_modules()) else last
        return name, True
    maps = [n for n in names if outputs[n].dim() == 4]
    if not maps:
        return last, False
    big = [n for n in maps if min(outputs[n].shape[-2:]) >= MIN_CAM_SIZE]
    if big:
        return big[-1], False
    return max(reversed(maps), key=lambda n: min(outputs[n].shape[-2:])), False  # the largest map there is
