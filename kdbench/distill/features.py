"""Reading intermediate features by module name, through forward hooks.

As in torchdistill, no model is rewritten: a :class:`FeatureTap` registers forward hooks
on named modules and keeps their latest outputs. Default layers come from the model's
timm-style ``feature_info`` (timm models and kdbench's own CNNs both have one).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from kdbench.errors import ConfigError


def feature_modules(model: nn.Module) -> list[str]:
    """Module names of the model's stages, shallow to deep."""
    info = getattr(model, "feature_info", None)
    if info is None:
        raise ConfigError(f"{type(model).__name__} has no feature_info; name the layer explicitly "
                          f"(method option layer=...)")
    entries = info.info if hasattr(info, "info") else info
    names = [e["module"] for e in entries]
    return [n for n in names if n] or names


def pick_module(model: nn.Module, which: str | int) -> str:
    """A stage by module name, or by a position such as ``-1`` (last) or ``"middle"``."""
    names = feature_modules(model)
    if isinstance(which, str) and which not in ("middle", "last"):
        if which not in dict(model.named_modules()):
            raise ConfigError(f"{type(model).__name__} has no module {which!r}; stages are {', '.join(names)}")
        return which
    if which == "middle":
        return names[len(names) // 2]
    if which == "last":
        return names[-1]
    return names[int(which)]


def as_map(t: torch.Tensor, model: nn.Module | None = None) -> torch.Tensor:
    """Turn a stage output into a (B, C, H, W) map; ViT tokens become a square grid."""
    if t.dim() == 4:
        return t
    if t.dim() == 3:
        prefix = getattr(model, "num_prefix_tokens", 0) if model is not None else 0
        tokens = t[:, prefix:, :]
        side = int(math.isqrt(tokens.shape[1]))
        if side * side != tokens.shape[1]:
            raise ConfigError(f"cannot arrange {tokens.shape[1]} tokens on a square grid")
        return tokens.transpose(1, 2).reshape(t.shape[0], t.shape[2], side, side)
    raise ConfigError(f"a feature of shape {tuple(t.shape)} is not a map")


class FeatureTap:
    """Keep the outputs of named modules during forward passes.

    ``replace_output=True`` re-roots each captured output as a leaf that requires grad,
    so that gradients of the logits with respect to a frozen teacher's features can be
    taken (Grad-CAM inside the loss) without touching the teacher's parameters.
    """

    def __init__(self, model: nn.Module, names: list[str], replace_output: bool = False):
        modules = dict(model.named_modules())
        missing = [n for n in names if n not in modules]
        if missing:
            raise ConfigError(f"{type(model).__name__} has no module {missing[0]!r}")
        self.names = list(names)
        self.features: dict[str, torch.Tensor] = {}
        self._handles = [modules[n].register_forward_hook(self._hook(n, replace_output)) for n in names]

    def _hook(self, name: str, replace_output: bool):
        def hook(module, inputs, output):
            if replace_output and torch.is_grad_enabled() and not output.requires_grad:
                output = output.detach().requires_grad_(True)
                self.features[name] = output
                return output
            self.features[name] = output
            return None
        return hook

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.features[name]

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


def align(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Average-pool the larger of two maps to the spatial size of the smaller."""
    ha, hb = a.shape[-2:], b.shape[-2:]
    if ha == hb:
        return a, b
    size = (min(ha[0], hb[0]), min(ha[1], hb[1]))
    pool = torch.nn.functional.adaptive_avg_pool2d
    return (pool(a, size) if tuple(ha) != size else a), (pool(b, size) if tuple(hb) != size else b)


@torch.no_grad()
def probe_outputs(model: nn.Module, names: list[str], example: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs of the named modules on one eval-mode forward pass; the model's mode is restored."""
    was_training = model.training
    model.eval()
    tap = FeatureTap(model, names)
    try:
        model(example)
        return {n: tap[n] for n in names}
    finally:
        tap.remove()
        model.train(was_training)


def probe_channels(model: nn.Module, names: list[str], in_chans: int, image_size: int) -> list[int]:
    """Channels of the named stages, found by one forward pass on a blank image."""
    blank = torch.zeros(1, in_chans, image_size, image_size, device=next(model.parameters()).device)
    outputs = probe_outputs(model, names, blank)
    return [as_map(outputs[n], model).shape[1] for n in names]


def matched_stages(student: nn.Module, teacher: nn.Module, count: int) -> list[tuple[str, str]]:
    """Pair the last ``count`` stages of student and teacher by relative depth."""
    s_names, t_names = feature_modules(student), feature_modules(teacher)
    count = max(1, min(count, len(s_names), len(t_names)))
    return list(zip(s_names[-count:], t_names[-count:]))


def stages_after_stem(model: nn.Module) -> list[str]:
    """The model's stages without its stem: what mdistiller's ``feats[1:]`` and RepDistiller's ``feat[1:-1]`` keep.

    timm lists a CNN's stem output first, at reduction 2 (``act1`` of a ResNet, ``bn1`` of
    a MobileNet); models whose first entry is already a stage (kdbench's plain CNNs at
    reduction 1, ConvNeXt at 4, ViTs at 16) keep every entry.
    """
    names = feature_modules(model)
    info = getattr(model, "feature_info", None)
    entries = info.info if hasattr(info, "info") else info
    if len(names) > 2 and entries and entries[0].get("reduction") == 2 and entries[0].get("module") == names[0]:
        return names[1:]
    return names


def all_matched_stages(student: nn.Module, teacher: nn.Module) -> list[tuple[str, str]]:
    """Every stage after the stem, paired by relative depth from the deepest (the shallower network sets the count)."""
    s_names, t_names = stages_after_stem(student), stages_after_stem(teacher)
    count = min(len(s_names), len(t_names))
    return list(zip(s_names[-count:], t_names[-count:]))
