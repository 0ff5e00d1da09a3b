"""Built-in models: timm for everything real, plus one tiny plain CNN for tests.

Any timm model name works as teacher or student without registration (see
:func:`kdbench.distill.models.create_model`); the names registered here are extras.
"""

from __future__ import annotations

import torch
from torch import nn

from kdbench.errors import ConfigError
from kdbench.hookspecs import hookimpl


class TinyCNN(nn.Module):
    """A three-stage plain CNN (~25k parameters): fast enough for unit tests.

    It exposes a timm-style ``feature_info`` so that feature-based methods and Grad-CAM
    pick its layers the same way they do for timm models.
    """

    def __init__(self, num_classes: int, in_chans: int = 3, widths=(16, 32, 64)):
        super().__init__()
        stages, c = [], in_chans
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(
                nn.Conv2d(c, w, 3, stride, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=False),
                nn.Conv2d(w, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=False),
            ))
            c = w
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(c, num_classes)
        self.feature_info = [
            {"num_chs": w, "reduction": 2 ** i, "module": f"stages.{i}"} for i, w in enumerate(widths)
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(x).mean(dim=(2, 3)))


def no_pretrained_weights(name: str, pretrained: bool) -> None:
    """Refuse ``pretrained`` for a model that has no published weights: ignoring it trained from
    scratch while every row said ``teacher_pretrained: true``."""
    if pretrained:
        raise ConfigError(f"model {name} has no pretrained weights; drop --teacher-pretrained, or use a timm "
                          f"teacher whose weights are in the local Hugging Face cache (e.g. resnet18)")


def tinycnn(num_classes, in_chans=3, image_size=32, pretrained=False):
    """Three-stage plain CNN, ~25k parameters; for tests and quick experiments."""
    no_pretrained_weights("tinycnn", pretrained)
    return TinyCNN(num_classes, in_chans)


def smallcnn(num_classes, in_chans=3, image_size=32, pretrained=False):
    """Layer-reduced plain CNN (two stages, 16/32 channels), after the transparency study."""
    no_pretrained_weights("smallcnn", pretrained)
    return TinyCNN(num_classes, in_chans, widths=(16, 32))


def resnet18_28(num_classes, in_chans=3, image_size=28, pretrained=False):
    """timm's ResNet-18 with the small-image stem of MedMNIST's baselines: a 3x3 stride-1 conv, no max-pool.

    At 28 px the standard stem (7x7 stride 2 + max-pool) leaves a 7x7 map after four
    pixels' worth of downsampling and a 1x1 last stage; MedMNIST v2 and MedMNIST+ train
    their 28-px ResNet-18 with this CIFAR-style stem (stages at 28, 14, 7 and 4 px), at
    about 8x the FLOPs. Only the stem differs, so timm's stage names (``layer1``..``layer4``)
    and everything that reads them still work.
    """
    import timm

    no_pretrained_weights("resnet18_28", pretrained)  # ImageNet's 7x7 stem weights do not fit its 3x3 stem
    model = timm.create_model("resnet18", pretrained=False, num_classes=num_classes, in_chans=in_chans)
    model.conv1 = nn.Conv2d(in_chans, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


class ResizeInput(nn.Module):
    """Bilinear (antialiased) resize of the input batch to ``size`` x ``size``: the teacher's own first step."""

    def __init__(self, size: int):
        super().__init__()
        self.size = int(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] == (self.size, self.size):
            return x
        return nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear",
                                         align_corners=False, antialias=True)

    def extra_repr(self) -> str:
        return f"size={self.size}"


def resnet18_64(num_classes, in_chans=3, image_size=28, pretrained=False):
    """timm's ResNet-18 that upsamples its input to 64 px before its standard stem.

    Why: at 28 px the standard stem leaves a 1x1 last stage, and on BreastMNIST that teacher
    is no stronger than a small CNN trained alone, so distilling it can only hurt. Upsampling
    the whole dataset to 64 px (``medmnist.image_size=64``) fixes the teacher, but makes every
    student and every explanation metric pay for 64 px too. Doing the upsampling inside the
    teacher keeps the students at the data's native resolution (the on-device setting of the
    seed papers) and costs only the teacher's forward, which the teacher-output cache pays
    once per training set. The resize is the same as the dataset option's (bilinear,
    antialiased), so the two teachers see the same pixels; the stage names (``layer1`` ..
    ``layer4``, at 16/8/4/2 px) are timm's.
    """
    from kdbench.distill.models import create_timm_model

    model = create_timm_model("resnet18", num_classes=num_classes, in_chans=in_chans, image_size=64,
                              pretrained=pretrained)  # ImageNet weights fit: the stem is unchanged
    model.conv1 = nn.Sequential(ResizeInput(64), model.conv1)
    return model


@hookimpl
def register_models(register):
    register("tinycnn", tinycnn)
    register("smallcnn", smallcnn)
    register("resnet18_28", resnet18_28)
    register("resnet18_64", resnet18_64)
