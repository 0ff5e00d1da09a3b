"""Convolutions that skip the kernel taps which can only ever see zero padding.

Why: at MedMNIST's 28 px, timm's ResNet-18 and MobileNetV3 end on 2x2 and 1x1 maps, where a
3x3 or 5x5 kernel with "same" padding has most of its taps over the padding. Those taps add
exact zeros to the output and receive exact zeros as gradient, so dropping them changes
nothing in exact arithmetic, but the CPU kernels do not know that: on an AVX2 machine oneDNN falls back to a
generic GEMM for such weight gradients (about 0.4 s for one 512->512 3x3 layer at batch 128,
under 1 GFLOP/s). Cropping each kernel to the taps that touch the input makes these layers
1x1 or 3x3 convolutions with fast kernels: a training step of the resnet18 teacher ran 2.3x
and of mobilenetv3_small_050 1.7x faster there (benchmarks/RESULTS.md, "Dead kernel taps").
The outputs are the same numbers up to float32 rounding, not bit for bit: the smaller kernel
runs through another oneDNN algorithm, which sums in another order (equal to 1e-12 in
float64, tests/test_dead_taps.py; a trained resnet18's input gradients moved by ~1e-6).

What is cropped: plain ``nn.Conv2d`` modules with numeric zero padding, on CPU tensors only
(CUDA kernels were not measured, so they run the full kernel). The module stays the same
object with the same parameters, names and hooks; only its class becomes
:class:`TapCroppingConv2d`, a subclass, so the weight keeps its full shape, an optimiser
updates every tap and a checkpoint loads anywhere.

Efficiency figures describe the architecture as anyone else runs it: FLOPs and latency are
measured with :func:`full_kernels`, so they do not change.
"""

from __future__ import annotations

import contextlib
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

_disabled = 0


@contextlib.contextmanager
def full_kernels():
    """Run every convolution with its whole kernel (for FLOP counts and latency)."""
    global _disabled
    _disabled += 1
    try:
        yield
    finally:
        _disabled -= 1


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Length of a convolution's output along one axis (PyTorch's formula)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def live_taps(size: int, kernel: int, stride: int, padding: int, dilation: int) -> tuple[int, int]:
    """First and last kernel tap (along one axis) that reads an input pixel for some output pixel.

    Output ``o`` reads input ``o * stride - padding + t * dilation`` with tap ``t``; a tap that
    is outside ``[0, size)`` for every output only ever multiplies zero padding.
    """
    outputs = output_size(size, kernel, stride, padding, dilation)
    live = [t for t in range(kernel)
            if any(0 <= o * stride - padding + t * dilation < size for o in range(outputs))]
    if not live:  # no tap reads the input: keep the kernel (PyTorch defines the result)
        return 0, kernel - 1
    return live[0], live[-1]


@lru_cache(maxsize=4096)
def cropped_geometry(size: int, kernel: int, stride: int, padding: int, dilation: int):
    """``(first_tap, last_tap, new_padding)`` when cropping keeps the output size, else ``None``.

    Cached: every convolution asks on every forward, with a handful of distinct geometries.
    """
    first, last = live_taps(size, kernel, stride, padding, dilation)
    if (first, last) == (0, kernel - 1):
        return None
    new_padding = padding - first * dilation
    before = output_size(size, kernel, stride, padding, dilation)
    after = output_size(size, last - first + 1, stride, new_padding, dilation)
    if new_padding < 0 or after != before:
        return None  # would need asymmetric padding: run the whole kernel
    return first, last, new_padding


class TapCroppingConv2d(nn.Conv2d):
    """``nn.Conv2d`` that, on CPU, convolves with only the taps that can touch the input."""

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias):
        if _disabled or x.device.type != "cpu" or self.padding_mode != "zeros" or isinstance(self.padding, str):
            return super()._conv_forward(x, weight, bias)
        rows = cropped_geometry(x.shape[-2], self.kernel_size[0], self.stride[0], self.padding[0], self.dilation[0])
        cols = cropped_geometry(x.shape[-1], self.kernel_size[1], self.stride[1], self.padding[1], self.dilation[1])
        if rows is None and cols is None:
            return super()._conv_forward(x, weight, bias)
        h0, h1, ph = rows or (0, self.kernel_size[0] - 1, self.padding[0])
        w0, w1, pw = cols or (0, self.kernel_size[1] - 1, self.padding[1])
        return F.conv2d(x, weight[:, :, h0:h1 + 1, w0:w1 + 1], bias, self.stride, (ph, pw), self.dilation,
                        self.groups)


def crop_dead_taps(model: nn.Module) -> nn.Module:
    """Make every plain ``nn.Conv2d`` of ``model`` a :class:`TapCroppingConv2d`, in place."""
    for module in model.modules():
        if type(module) is nn.Conv2d:
            module.__class__ = TapCroppingConv2d
    return model
