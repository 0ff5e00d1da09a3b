"""Explainers that need no attribution algorithm: the chance baseline and MED-TEX's mask."""

from __future__ import annotations

import torch

from kdbench.errors import NotApplicableError


def random_map(model, x, target):
    """Uniform noise: the chance baseline every explanation score is read against.

    Seeded from the input, so the same images always get the same noise.
    """
    seed = int(torch.as_tensor(x).double().abs().sum().item() * 1000) % (2**31)
    g = torch.Generator().manual_seed(seed)
    return torch.rand((x.shape[0], 1, *x.shape[-2:]), generator=g).to(x.device)


@torch.no_grad()
def medtex_mask(model, x, target):
    """The pixel mask learned by MED-TEX's explainer (students trained by ``medtex`` only)."""
    if not hasattr(model, "mask"):
        raise NotApplicableError("medtex-mask applies only to students trained by the medtex method")
    return model.mask(x).float()
