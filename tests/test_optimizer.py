"""fit's optimizer: the multi-tensor AdamW is a speed-up only, never a change of the weights."""

import torch

from kdbench.builtins.models import TinyCNN
from kdbench.distill.methods.medtex import MedTex
from kdbench.distill.training import TrainConfig, fit, freeze


def _medtex(tiny_data) -> MedTex:
    """Student, explainer and VID regressors: three kinds of parameter, all from seed 0."""
    info = tiny_data.info
    torch.manual_seed(0)
    student, teacher = TinyCNN(info.num_classes, info.in_chans, widths=(8, 16)), freeze(TinyCNN(info.num_classes, info.in_chans))
    return MedTex(student, teacher, info)


def _weights(method) -> list[torch.Tensor]:
    return [p.detach().clone() for p in method.parameters()]


def _trained_weights(tiny_data) -> list[torch.Tensor]:
    method = _medtex(tiny_data)
    fit(method, tiny_data.train, tiny_data.val, TrainConfig(epochs=2, batch_size=16))
    return _weights(method)


def test_fit_s_foreach_adamw_gives_bit_identical_weights_to_the_per_tensor_loop(tiny_data, monkeypatch):
    calls = []
    plain_adamw = torch.optim.AdamW

    def recording(*args, **kwargs):
        calls.append(kwargs.get("foreach"))
        return plain_adamw(*args, **kwargs)

    monkeypatch.setattr(torch.optim, "AdamW", recording)
    multi_tensor = _trained_weights(tiny_data)
    monkeypatch.setattr(torch.optim, "AdamW", lambda *a, **k: plain_adamw(*a, **dict(k, foreach=False)))
    per_tensor = _trained_weights(tiny_data)
    assert calls == [True]  # fit asks for the multi-tensor update
    assert len(multi_tensor) == len(per_tensor) > 10
    assert all(torch.equal(a, b) for a, b in zip(multi_tensor, per_tensor))
    untrained = _weights(_medtex(tiny_data))
    assert any(not torch.equal(a, b) for a, b in zip(multi_tensor, untrained))  # training moved them
