"""The device path: the teacher-output cache under AMP and channels-last, and a whole run on CUDA.

The CUDA cases run only where a GPU is (``pytest tests/test_cuda_path.py`` on a GPU machine
is the device check); the CPU case of the same test runs everywhere, so the checks
themselves are exercised in CI.
"""

from __future__ import annotations

import math

import pytest
import torch

from kdbench.distill.methods.hinton import Hinton
from kdbench.distill.models import create_model
from kdbench.distill.teacher_cache import TeacherOutputCache
from kdbench.distill.training import TrainConfig, fit, freeze

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here; run this file on a GPU machine")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]


def _hinton(info):
    torch.manual_seed(0)
    teacher = freeze(create_model("resnet18", {}, num_classes=info.num_classes, in_chans=info.in_chans,
                                  image_size=info.image_size))
    student = create_model("mobilenetv3_small_050", {}, num_classes=info.num_classes, in_chans=info.in_chans,
                           image_size=info.image_size)
    return Hinton(student, teacher, info)


def _train(info, data, device, budget):
    method = _hinton(info)
    cache = TeacherOutputCache(budget=budget)
    cfg = TrainConfig(epochs=2, batch_size=16, device=device, amp=device == "cuda")
    result = fit(method, data.train, data.val, cfg, teacher_cache=cache, data_id="tiny")
    return method, cache, result


@pytest.mark.parametrize("device", DEVICES)
def test_the_teacher_cache_serves_training_under_amp_and_channels_last(device, tiny_data):
    method, cache, cached = _train(tiny_data.info, tiny_data, device, budget=2**30)
    outputs = cache.outputs(method, "tiny", tiny_data.train.x, 16)  # already there: nothing is recomputed
    assert outputs is not None and set(outputs) == {"logits"} and cache.computed == len(tiny_data.train)
    logits = outputs["logits"]
    amp_dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
    assert logits.device.type == device and logits.shape == (len(tiny_data.train), tiny_data.info.num_classes)
    assert logits.dtype == (amp_dtype if device == "cuda" else torch.float32)  # as the live step's autocast gives
    # channels-last: the depthwise student everywhere, the resnet18 teacher on CUDA only (models.memory_format_for)
    s_conv = next(m.weight for m in method.student.modules() if isinstance(m, torch.nn.Conv2d))
    t_conv = next(m.weight for m in method.teacher.modules() if isinstance(m, torch.nn.Conv2d))
    assert s_conv.is_contiguous(memory_format=torch.channels_last)
    assert t_conv.is_contiguous(memory_format=torch.channels_last) == (device == "cuda")
    assert all(math.isfinite(h["loss"]) and math.isfinite(h["kd"]) for h in cached.history)

    _, live_cache, live = _train(tiny_data.info, tiny_data, device, budget=0)
    assert len(live_cache) == 0  # the live run recomputed its teacher on every step
    first, other = cached.history[0]["loss"], live.history[0]["loss"]
    if device == "cpu":
        assert first == other  # bit-identical on CPU (test_teacher_cache has the whole-run version)
    else:  # GPU kernels may depend on the batch's size and layout: the same numbers up to rounding
        assert first == pytest.approx(other, rel=1e-2)


@CUDA
def test_a_whole_run_on_cuda_with_amp_scores_every_method_and_explainer(tmp_path):
    from kdbench.testing import run_tiny_benchmark

    methods = ("hinton", "dkd", "fitnets", "at", "e2kd", "medtex")
    rows = run_tiny_benchmark(tmp_path / "out", methods=methods, explainers=("gradcam", "saliency", "random"),
                              cache_dir=tmp_path / "cache",
                              extra=("--device", "cuda", "--amp", "--students", "mobilenetv3_small_050"))
    assert rows and all(r["status"] == "ok" for r in rows), [r.get("error") for r in rows if r["status"] != "ok"]
    assert {r["method"] for r in rows} == {"teacher", "scratch", *methods}
    assert all(str(r["device"]).startswith("cuda") and r["amp"] is True for r in rows)
    explained = [r for r in rows if r["kind"] == "explanation"]
    assert {r["explainer"] for r in explained} == {"gradcam", "saliency", "random"}
    assert all(r["pointing_game"] is not None for r in explained)
