"""Cropping dead kernel taps changes no number: outputs, input and weight gradients, FLOP counts."""

import itertools

import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from kdbench.distill.dead_taps import (
    TapCroppingConv2d,
    crop_dead_taps,
    full_kernels,
    live_taps,
)
from kdbench.distill.models import create_model
from kdbench.evaluate.predictive import count_flops
from kdbench.plugins import load_plugins
from kdbench.run.steps import efficiency


def brute_live_taps(size, kernel, stride, padding, dilation):
    """Which taps get a non-zero weight gradient from an all-ones input: the live ones."""
    x = torch.ones(1, 1, 1, size, dtype=torch.float64)
    w = torch.zeros(1, 1, 1, kernel, dtype=torch.float64, requires_grad=True)
    F.conv2d(x, w, stride=(1, stride), padding=(0, padding), dilation=(1, dilation)).sum().backward()
    live = w.grad.flatten().nonzero().flatten().tolist()
    return live[0], live[-1]


@pytest.mark.parametrize("size,kernel,stride,dilation", [
    c for c in itertools.product([1, 2, 3, 4, 7], [1, 3, 5, 7], [1, 2], [1, 2])
    if (c[0] + 2 * (c[1] // 2) - c[3] * (c[1] - 1) - 1) >= 0])
def test_live_taps_are_the_taps_with_gradient(size, kernel, stride, dilation):
    padding = dilation * (kernel // 2)
    assert live_taps(size, kernel, stride, padding, dilation) == brute_live_taps(size, kernel, stride, padding, dilation)


@pytest.mark.parametrize("size", [1, 2, 3, 5])
@pytest.mark.parametrize("kernel,stride,groups", [(3, 1, 1), (5, 1, 6), (3, 2, 1), (5, 2, 6), (1, 1, 1)])
def test_cropped_conv_equals_full_conv_with_gradients(size, kernel, stride, groups):
    torch.manual_seed(0)
    full = nn.Conv2d(6, 6, kernel, stride, kernel // 2, groups=groups).double()
    cropped = crop_dead_taps(nn.Sequential(nn.Conv2d(6, 6, kernel, stride, kernel // 2, groups=groups).double()))[0]
    assert type(cropped) is TapCroppingConv2d
    cropped.load_state_dict(full.state_dict())
    x = torch.randn(4, 6, size, size, dtype=torch.float64)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = full(xa), cropped(xb)
    assert ya.shape == yb.shape
    torch.testing.assert_close(yb, ya, rtol=0, atol=1e-12)
    g = torch.randn_like(ya)
    ya.backward(g)
    yb.backward(g)
    torch.testing.assert_close(xb.grad, xa.grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(cropped.weight.grad, full.weight.grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(cropped.bias.grad, full.bias.grad, rtol=0, atol=1e-12)


def test_a_1x1_map_runs_only_the_centre_tap_unless_full_kernels():
    conv = crop_dead_taps(nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1, bias=False)))
    x = torch.randn(2, 8, 1, 1)
    with FlopCounterMode(display=False) as cropped:
        conv(x)
    with full_kernels(), FlopCounterMode(display=False) as full:
        conv(x)
    assert cropped.get_total_flops() * 9 == full.get_total_flops() == 2 * 2 * 8 * 8 * 9


@pytest.mark.parametrize("name,classes", [("resnet18", 8), ("mobilenetv3_small_050", 2)])
def test_timm_models_at_28px_train_the_same_with_and_without_cropping(name, classes):
    """The built models crop; forward, every parameter gradient and the FLOP count are unchanged."""
    models = load_plugins(entry_points=False).models
    torch.manual_seed(0)
    cropped = create_model(name, models, num_classes=classes, in_chans=3, image_size=28)
    assert any(type(m) is TapCroppingConv2d for m in cropped.modules())
    full = timm.create_model(name, num_classes=classes, in_chans=3)
    assert list(full.state_dict()) == list(cropped.state_dict())
    full.load_state_dict(cropped.state_dict())
    x, y = torch.randn(6, 3, 28, 28), torch.randint(0, classes, (6,))
    for model in (full, cropped):
        F.cross_entropy(model(x), y).backward()
    for (n, a), b in zip(full.named_parameters(), cropped.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6, msg=n)
    full.eval(), cropped.eval()
    with torch.no_grad():
        torch.testing.assert_close(cropped(x), full(x), rtol=1e-5, atol=1e-6)
    assert count_flops(cropped, x) < count_flops(full, x)  # cropping is in effect
    assert efficiency(cropped, x[:1], "cpu")["flops"] == count_flops(full, x) == efficiency(full, x[:1], "cpu")["flops"]


def test_published_latency_runs_the_whole_kernels(monkeypatch):
    """The latency column times the architecture as other frameworks run it, not kdbench's cropping."""
    import kdbench.run.steps as steps
    from kdbench.distill import dead_taps

    seen = []
    monkeypatch.setattr(steps, "cpu_latency", lambda model, example, **_: seen.append(dead_taps._disabled) or (1.0, 0.1))
    steps.efficiency(nn.Conv2d(1, 1, 3, padding=1), torch.zeros(1, 1, 4, 4), "cpu")
    assert seen == [1]
