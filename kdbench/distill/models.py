"""Model creation: registered factories first, then any timm model name."""

from __future__ import annotations

import contextlib
from pathlib import Path

import timm
import torch
from torch import nn

from kdbench.distill.dead_taps import crop_dead_taps
from kdbench.errors import ConfigError, UnknownNameError
from kdbench.registry import Registry, unknown_message


def create_model(name: str, models: Registry, *, num_classes: int, in_chans: int, image_size: int,
                 pretrained: bool = False) -> nn.Module:
    """Build a teacher or student by name.

    ``pretrained=True`` only works where timm finds the weights locally (a checkpoint or
    its cache): kdbench never downloads at run time. Its convolutions skip the kernel taps
    that only see zero padding (:mod:`kdbench.distill.dead_taps`: the same numbers up to float rounding, faster on CPU).
    """
    if name in models:
        return crop_dead_taps(models.get(name).obj(num_classes=num_classes, in_chans=in_chans,
                                                   image_size=image_size, pretrained=pretrained))
    if timm.is_model(name):
        return crop_dead_taps(create_timm_model(name, num_classes=num_classes, in_chans=in_chans,
                                                image_size=image_size, pretrained=pretrained))
    raise UnknownNameError(unknown_message("model", name, models.names()) +
                           "; any timm model name also works (see timm.list_models())")


def create_timm_model(name: str, *, num_classes: int, in_chans: int, image_size: int,
                      pretrained: bool = False) -> nn.Module:
    """A timm model; pretrained weights come from the local Hugging Face cache or not at all."""
    kwargs = {}
    if "img_size" in _timm_kwargs(name):
        kwargs["img_size"] = image_size
    if not pretrained:
        return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_chans, **kwargs)
    try:
        with _hub_offline():  # never download at run time: the local Hugging Face cache only
            return timm.create_model(name, pretrained=True, num_classes=num_classes, in_chans=in_chans, **kwargs)
    except Exception:
        raise ConfigError(f"model {name}: no pretrained weights in the local Hugging Face cache; kdbench never "
                          f"downloads: drop --teacher-pretrained to train the teacher with kdbench, or pass "
                          f"--teacher-checkpoint FILE") from None


@contextlib.contextmanager
def _hub_offline():
    """Switch huggingface_hub to offline mode (its constant is read at call time)."""
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def _timm_kwargs(name: str) -> set[str]:
    """Vision transformers take the image size as a constructor argument."""
    return {"img_size"} if any(k in name for k in ("vit", "deit", "swin", "eva", "beit")) else set()


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def load_checkpoint(model: nn.Module, path: str | Path, what: str = "teacher") -> nn.Module:
    """Load a state_dict saved with torch.save, refusing a mismatched architecture."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} checkpoint {path} " + ("is a folder, not a file" if path.is_dir() else "does not exist"))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"{what} checkpoint {path} cannot be read ({type(exc).__name__}); "
                          f"it must be a state_dict saved with torch.save") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0]
        raise ConfigError(f"{what} checkpoint {path} does not fit the model (another architecture or class "
                          f"count?): {detail[:200]}") from None
    return model


def memory_format_for(model: nn.Module, device: str | torch.device = "cpu") -> torch.memory_format:
    """Channels-last where it is faster: on CUDA always, on CPU for models with depthwise convolutions.

    Measured side by side (benchmarks/RESULTS.md, "Channels-last on CPU"): oneDNN runs
    MobileNet's depthwise convolutions 3x faster for inference and 2x for training in
    channels-last, while a resnet18 is 6-17% slower, so on CPU only depthwise models switch.
    """
    if torch.device(device).type == "cuda":
        return torch.channels_last
    depthwise = any(isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels for m in model.modules())
    return torch.channels_last if depthwise else torch.contiguous_format
