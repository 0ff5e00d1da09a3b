"""The teacher-output cache: computed once per training set, bit-identical rows, bounded memory."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import TINY_RUN

from kdbench.cli import main
from kdbench.distill.teacher_cache import TeacherOutputCache

#: Row columns that legitimately differ between two runs of the same job.
VOLATILE = {"timestamp", "train_seconds", "latency_ms", "latency_ms_std", "checkpoint", "teacher_cached",
            "xai_seconds", "seconds", "explain_ms_per_image", "metric_seconds", "latency_iqr_ms"}


def _rows(out):
    rows = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    return {(r["method"], r["kind"], r.get("explainer")): {k: v for k, v in r.items() if k not in VOLATILE}
            for r in rows}


def test_cached_and_recomputing_paths_give_bit_identical_rows(tmp_path, monkeypatch):
    """Every built-in method, end to end: same rows and byte-identical student weights with and without the cache.

    (Explanation rows follow from identical weights; they are left out to keep this fast.)
    """
    args = ["run", "--methods", "hinton,dkd,fitnets,at,e2kd,medtex", *TINY_RUN, "--epochs", "2"]  # 2 epochs reuse
    served = []  # the methods that got cached teacher outputs, one entry per fit
    original = TeacherOutputCache.outputs

    def spy(self, method, *a, **kw):
        out = original(self, method, *a, **kw)
        if out is not None:
            served.append(type(method).__name__)
        return out

    monkeypatch.setattr(TeacherOutputCache, "outputs", spy)
    monkeypatch.setenv("KDBENCH_TEACHER_CACHE_MB", "0")
    assert main([*args, "--out", str(tmp_path / "live"), "--cache-dir", str(tmp_path / "c1")]) == 0
    assert served == []  # no budget: every method recomputed its teacher
    monkeypatch.setenv("KDBENCH_TEACHER_CACHE_MB", "512")
    assert main([*args, "--out", str(tmp_path / "cached"), "--cache-dir", str(tmp_path / "c2")]) == 0
    assert sorted(served) == ["AttentionTransfer", "DKD", "E2KD", "FitNets", "Hinton", "MedTex"]
    live, cached = _rows(tmp_path / "live"), _rows(tmp_path / "cached")
    assert live.keys() == cached.keys() and len(live) == 8  # teacher, scratch and the six methods
    for key in live:
        assert live[key] == cached[key], key
    weights = {}
    for run in ("live", "cached"):
        rows = [json.loads(line) for line in (tmp_path / run / "runs.jsonl").read_text().splitlines()]
        weights[run] = {r["method"]: torch.load(r["checkpoint"], weights_only=True) for r in rows
                        if r["method"] != "teacher"}
    for method, state in weights["live"].items():  # torch.save files differ by a random id: compare tensors
        other = weights["cached"][method]
        assert state.keys() == other.keys() and all(torch.equal(state[k], other[k]) for k in state), method


class _Counting(torch.nn.Module):
    """Counts the images the wrapped teacher sees."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.images = 0
        self.feature_info = getattr(model, "feature_info", None)

    def forward(self, x):
        self.images += len(x)
        return self.model(x)


@pytest.mark.parametrize("method_name", ["hinton", "dkd"])
def test_the_teacher_sees_each_training_image_once_across_epochs_and_methods(method_name, tiny_data, plugins):
    from kdbench.builtins.models import TinyCNN
    from kdbench.distill.training import TrainConfig, fit, freeze

    torch.manual_seed(0)
    teacher = freeze(TinyCNN(3, 3))
    counted = _Counting(teacher)
    cache = TeacherOutputCache(budget=2**30)
    cfg = TrainConfig(epochs=3, batch_size=16)
    for name in (method_name, "hinton"):
        cls = plugins.methods.get(name).obj
        method = cls(TinyCNN(3, 3, widths=(8, 16)), counted, tiny_data.info)
        before = counted.images
        fit(method, tiny_data.train, tiny_data.val, cfg, teacher_cache=cache, data_id="tiny")
        seen = counted.images - before
        # first method: one pass over the training set (+2 images probing the size, + one batch in float64 per
        # term check); second: nothing but its term check. Recomputing would be epochs x len(train).
        assert seen <= (len(tiny_data.train) + 2 if name == method_name else 0) + 2 * cfg.batch_size
        method.release()
    assert cfg.epochs * len(tiny_data.train) > len(tiny_data.train) + 2 + 2 * cfg.batch_size


def test_outputs_over_the_budget_are_recomputed_never_dropped(tiny_data, plugins):
    from kdbench.builtins.models import TinyCNN
    from kdbench.distill.training import TrainConfig, fit, freeze

    def train(cache):
        torch.manual_seed(0)
        teacher = freeze(TinyCNN(3, 3))
        method = plugins.methods.get("fitnets").obj(TinyCNN(3, 3, widths=(8, 16)), teacher, tiny_data.info)
        result = fit(method, tiny_data.train, tiny_data.val, TrainConfig(epochs=2, batch_size=16),
                     teacher_cache=cache, data_id="tiny")
        return result, method.student.state_dict(), teacher

    small = TeacherOutputCache(budget=1024)  # logits fit, the hinted feature maps do not
    big = TeacherOutputCache(budget=2**30)
    (r1, s1, _), (r2, s2, teacher) = train(small), train(big)
    assert len(small) == 0 and small.refused and "recomputed on every step" in small.refused[0]
    assert len(big) == 2  # logits and the hinted stage, kept while their teacher lives
    del teacher
    import gc

    gc.collect()
    assert len(big) == 0 and big.used == 0
    assert r1.history == r2.history and all(torch.equal(s1[k], s2[k]) for k in s1)


def test_least_recently_used_outputs_make_room(tiny_data, plugins):
    from kdbench.builtins.models import TinyCNN
    from kdbench.distill.training import freeze

    teacher = freeze(TinyCNN(3, 3))
    hinton = plugins.methods.get("hinton").obj(TinyCNN(3, 3, widths=(8, 16)), teacher, tiny_data.info)
    one = len(tiny_data.train) * 3 * 4  # float32 logits of 3 classes
    cache = TeacherOutputCache(budget=int(1.5 * one))
    cache.outputs(hinton, "a", tiny_data.train.x, 16)
    cache.outputs(hinton, "b", tiny_data.train.x, 16)  # evicts "a"
    assert len(cache) == 1 and cache.used == one and math.isclose(cache.computed, 2 * len(tiny_data.train))


def test_augmented_training_never_reads_the_cache(tiny_data, plugins):
    from kdbench.builtins.models import TinyCNN
    from kdbench.distill.training import TrainConfig, fit, freeze

    teacher = freeze(TinyCNN(3, 3))
    method = plugins.methods.get("hinton").obj(TinyCNN(3, 3, widths=(8, 16)), teacher, tiny_data.info)
    cache = TeacherOutputCache(budget=2**30)
    fit(method, tiny_data.train, tiny_data.val, TrainConfig(epochs=1, batch_size=16, augment=True),
        teacher_cache=cache, data_id="tiny")
    assert len(cache) == 0


def test_a_plugin_that_reads_its_own_hooks_is_not_served_from_the_cache(tiny_data):
    from kdbench.api import Distiller
    from kdbench.builtins.models import TinyCNN
    from kdbench.distill.training import freeze

    class HookReader(Distiller):
        def forward(self, x, y):  # pragma: no cover - never trained here
            raise AssertionError

    method = HookReader(TinyCNN(3, 3), freeze(TinyCNN(3, 3)), tiny_data.info)
    assert TeacherOutputCache(budget=2**30).outputs(method, "tiny", tiny_data.train.x, 16) is None


def test_the_term_check_reads_cached_teacher_outputs_and_leaves_the_teacher_as_it_was(tiny_data, plugins):
    from kdbench.builtins.models import TinyCNN
    from kdbench.distill.methods.term_check import (
        DeadLossTermError,
        check_terms_move_student,
    )
    from kdbench.distill.teacher_cache import batch_of
    from kdbench.distill.training import freeze

    teacher = freeze(TinyCNN(3, 3))
    method = plugins.methods.get("hinton").obj(TinyCNN(3, 3, widths=(8, 16)), teacher, tiny_data.info)
    x, y = tiny_data.train.x[:16], tiny_data.train.y[:16]
    outputs = TeacherOutputCache(budget=2**30).outputs(method, "tiny", tiny_data.train.x, 16)
    calls = []
    hook = teacher.register_forward_hook(lambda *_: calls.append(1))
    assert check_terms_move_student(method, x, y, set(), batch_of(outputs, torch.arange(16))) == {"kd"}
    hook.remove()
    assert calls == []  # the check ran on the cached outputs: the teacher was never called
    assert method.teacher is teacher and "teacher" in method._modules and method.cached_teacher is None
    assert next(teacher.parameters()).dtype == torch.float32
    dead = {k: v * 0 for k, v in batch_of(outputs, torch.arange(16)).items()}  # constant teacher logits still
    assert check_terms_move_student(method, x, y, set(), dead) == {"kd"}  # train the student through kd
    with pytest.raises(DeadLossTermError):  # a term detached from the student is still caught
        method.forward = lambda x, y: {"loss": method.student(x).sum(), "logits": method.student(x),
                                       "kd": method.student(x).sum().detach()}
        check_terms_move_student(method, x, y, set(), batch_of(outputs, torch.arange(16)))
