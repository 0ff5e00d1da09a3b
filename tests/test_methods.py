"""Behaviour of every KD method on a tiny batch."""

import copy

import numpy as np
import pytest
import torch

from kdbench.builtins.models import TinyCNN
from kdbench.data.contract import fraction_indices
from kdbench.distill.losses import kd_loss
from kdbench.distill.methods.at import AttentionTransfer
from kdbench.distill.methods.dkd import DKD
from kdbench.distill.methods.e2kd import E2KD
from kdbench.distill.methods.fitnets import FitNets
from kdbench.distill.methods.hinton import Hinton
from kdbench.distill.methods.medtex import MedTex
from kdbench.distill.methods.scratch import Scratch
from kdbench.errors import ConfigError, UnsupportedTaskError

ALL = [Scratch, Hinton, FitNets, AttentionTransfer, DKD, E2KD, MedTex]
KD = [m for m in ALL if m is not Scratch]


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_hinton_term_is_zero_with_zero_gradient_when_logits_match(task):
    t = torch.randn(8, 3)
    s = t.clone().requires_grad_(True)
    loss = kd_loss(s, t, T=4.0, task=task)
    loss.backward()
    assert abs(loss.item()) < 1e-6
    assert s.grad.abs().max().item() < 1e-6
    s2 = (t + torch.randn(8, 3)).requires_grad_(True)
    assert kd_loss(s2, t, T=4.0, task=task).item() > 1e-3


def test_hinton_matches_the_stated_convention():
    s, t, y = torch.randn(6, 3), torch.randn(6, 3), torch.randint(0, 3, (6,))
    T, a = 4.0, 0.9
    p_t = torch.softmax(t / T, 1)
    kl = (p_t * (p_t.log() - torch.log_softmax(s / T, 1))).sum(1).mean() * T * T
    expected = (1 - a) * torch.nn.functional.cross_entropy(s, y) + a * kl

    class Fixed(torch.nn.Module):
        def __init__(self, out):
            super().__init__()
            self.out = out
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x):
            return self.out + self.w

    from kdbench.data.contract import DatasetInfo
    info = DatasetInfo("d", "multiclass", ("a", "b", "c"), 3, 8)
    got = Hinton(Fixed(s), Fixed(t), info)(torch.zeros(6, 3, 8, 8), y)["loss"]
    assert torch.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.method_name)
def test_loss_decreases_and_only_the_student_side_learns(cls, tiny_data, tiny_pair):
    student, teacher = tiny_pair
    t_before = copy.deepcopy(teacher.state_dict())
    method = cls(student, teacher, tiny_data.info)
    x, y = tiny_data.train.x[:16], tiny_data.train.y[:16]
    opt = torch.optim.Adam(method.trainable_parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        method.train()
        out = method(x, y)
        opt.zero_grad()
        out["loss"].backward()
        if not losses:  # gradients of the first step
            assert all(p.grad is None for p in teacher.parameters())
            extra = [p for n, p in method.named_parameters() if not n.startswith(("student.", "teacher.", "model."))]
            assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in extra), "extra parts get gradients"
            assert any(p.grad is not None for p in student.parameters())
        opt.step()
        losses.append(out["loss"].item())
        assert not teacher.training
    assert losses[-1] < losses[0]
    after = teacher.state_dict()
    assert all(torch.equal(t_before[k], after[k]) for k in t_before), "teacher weights and BN stats unchanged"
    method.release()


@pytest.mark.parametrize("cls,term", [(Hinton, "kd"), (DKD, "tckd"), (DKD, "nckd"), (AttentionTransfer, "at"),
                                      (E2KD, "kd"), (E2KD, "expl")], ids=str)
def test_distillation_term_vanishes_for_a_copy_of_the_teacher(cls, term, tiny_data):
    teacher = TinyCNN(3, 3).eval()
    method = cls(copy.deepcopy(teacher), teacher, tiny_data.info)
    method.train()  # training mode, so e2KD builds its Grad-CAM term ...
    method.student.eval()  # ... while the copy normalises exactly like the teacher
    out = method(tiny_data.train.x[:8], tiny_data.train.y[:8])
    assert abs(out[term].item()) < 1e-5
    assert out["loss"].requires_grad


def test_medtex_mask_has_input_size_values_in_unit_interval_and_deploys_with_the_explainer(tiny_data, tiny_pair):
    student, teacher = tiny_pair
    method = MedTex(student, teacher, tiny_data.info)
    x = tiny_data.test.x[:5]
    mask = method.deployable().mask(x)
    assert mask.shape == (5, 1, 32, 32)
    assert mask.min() >= 0 and mask.max() <= 1
    n_student = sum(p.numel() for p in student.parameters())
    n_deployed = sum(p.numel() for p in method.deployable().parameters())
    assert n_deployed > n_student  # parameters, FLOPs and latency include the explainer
    method.train()
    method(tiny_data.train.x[:16], tiny_data.train.y[:16])  # training accumulates the fill image ...
    method(tiny_data.train.x[16:24], tiny_data.train.y[16:24])
    fill = method.deployable().fill_image
    assert torch.allclose(fill[0], tiny_data.train.x[:24].mean(0), atol=1e-6)  # ... the per-pixel mean
    deployed = method.deployable().eval()
    mask = deployed.mask(x)
    out = deployed(x)
    assert torch.allclose(out, student(mask * x + (1 - mask) * fill), atol=1e-6)
    assert torch.equal(deployed.fill_image, fill)  # frozen outside training


@pytest.mark.parametrize("cls", [m for m in ALL if m is not DKD], ids=lambda c: c.method_name)
def test_every_method_runs_on_multilabel(cls, tiny_multilabel):
    info = tiny_multilabel.info
    method = cls(TinyCNN(3, 3, widths=(8, 16)), TinyCNN(3, 3), info)
    out = method(tiny_multilabel.train.x[:8], tiny_multilabel.train.y[:8])
    assert out["logits"].shape == (8, 3) and torch.isfinite(out["loss"])
    out["loss"].backward()


def test_dkd_refuses_multilabel_naming_method_and_task(tiny_multilabel):
    with pytest.raises(UnsupportedTaskError, match="method dkd does not support the multilabel task"):
        DKD(TinyCNN(3, 3), TinyCNN(3, 3), tiny_multilabel.info)


def test_fitnets_two_stage_trains_the_hint_first_then_kd(tiny_data, tiny_pair):
    method = FitNets(*tiny_pair, tiny_data.info, two_stage=True, hint_fraction=0.5)
    x, y = tiny_data.train.x[:8], tiny_data.train.y[:8]
    for progress, stage in ((0.1, "hint"), (0.4, "hint"), (0.6, "kd"), (0.9, "kd")):  # 0.4: past the default 0.3
        method.progress = progress
        terms = set(method(x, y))
        assert stage in terms and ({"hint", "kd"} - {stage}).isdisjoint(terms), (progress, sorted(terms))


def test_options_are_typed_and_unknown_ones_refused(tiny_data, tiny_pair):
    assert Hinton(*tiny_pair, tiny_data.info, T="2").opts["T"] == 2.0
    with pytest.raises(ConfigError, match="method hinton has no option 'temp'"):
        Hinton(*tiny_pair, tiny_data.info, temp=2)
    with pytest.raises(ConfigError, match="hinton.T='hot' is not a valid float"):
        Hinton(*tiny_pair, tiny_data.info, T="hot")


def test_fractions_are_stratified_seed_fixed_and_method_independent():
    y = torch.tensor([0] * 600 + [1] * 300 + [2] * 100)
    a = fraction_indices(y, "multiclass", 0.1, seed=3)
    b = fraction_indices(y, "multiclass", 0.1, seed=3)
    c = fraction_indices(y, "multiclass", 0.1, seed=4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert len(a) == 100
    assert np.bincount(y[a].numpy()).tolist() == [60, 30, 10]
    assert np.array_equal(fraction_indices(y, "multiclass", 1.0, seed=3), np.arange(1000))


def test_fractions_that_cannot_be_stratified_are_a_seeded_shuffle_not_a_crash():
    y = torch.tensor([0] * 600 + [1] * 300 + [2] * 100)
    near_all = fraction_indices(y, "multiclass", 0.999, seed=3)  # leaves out 1 image: fewer than the 3 classes
    assert len(near_all) == 999 == len(np.unique(near_all))
    assert np.array_equal(near_all, fraction_indices(y, "multiclass", 0.999, seed=3))
    # 14 labels whose label sets are nearly all distinct: the kept images are counted against the 14 labels
    labels = torch.from_numpy(np.random.default_rng(0).integers(0, 2, (2000, 14))).float()
    small = fraction_indices(labels, "multilabel", 0.01, seed=0)
    assert len(small) == 20 and np.array_equal(small, fraction_indices(labels, "multilabel", 0.01, seed=0))
    with pytest.raises(ConfigError, match="keeps 10, fewer than the 14 classes"):
        fraction_indices(labels, "multilabel", 0.005, seed=0)


def test_e2kd_with_a_vision_transformer_teacher_explains_its_token_grid(tiny_data):
    import timm

    vit = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, num_classes=3, depth=2)
    method = E2KD(TinyCNN(3, 3, widths=(8, 16)), vit, tiny_data.info)
    assert method.t_layer == "blocks.1.norm1"
    method.train()
    out = method(tiny_data.train.x[:4], tiny_data.train.y[:4])
    assert torch.isfinite(out["loss"]) and 0 < out["expl"].item() <= 2
    method.release()


def test_the_amp_flag_changes_nothing_in_cpu_training(tiny_data):
    """fit asked for AMP on CPU trains in float32 (a run refuses --amp without CUDA before this)."""
    from kdbench.distill.training import TrainConfig, fit

    results = []
    for amp in (False, True):
        torch.manual_seed(0)
        student, teacher = TinyCNN(3, 3, widths=(8, 16)), TinyCNN(3, 3)
        fit(Hinton(student, teacher, tiny_data.info), tiny_data.train, tiny_data.val, TrainConfig(epochs=1, amp=amp))
        results.append(student(tiny_data.test.x[:8]))
    assert torch.equal(results[0], results[1])


def test_e2kd_trains_a_mobilenetv3_student_despite_hardsigmoid(tiny_data):
    import timm

    student = timm.create_model("mobilenetv3_small_050", num_classes=3)
    method = E2KD(student, TinyCNN(3, 3), tiny_data.info)
    method.train()
    out = method(tiny_data.train.x[:4], tiny_data.train.y[:4])
    out["loss"].backward()  # would raise "derivative for aten::hardsigmoid_backward is not implemented"
    assert any(p.grad is not None for p in student.parameters())
    method.release()


def test_resnet18_28_keeps_the_small_image_resolution(plugins):
    """MedMNIST's 28-px ResNet-18 stem: stages at 28, 14, 7 and 4 px instead of 7, 4, 2 and 1."""
    from kdbench.distill.features import probe_outputs
    from kdbench.distill.gradcam import gradcam_layer
    from kdbench.distill.models import create_model

    model = create_model("resnet18_28", plugins.models, num_classes=2, in_chans=1, image_size=28).eval()
    x = torch.zeros(2, 1, 28, 28)
    assert model(x).shape == (2, 2)
    sides = {n: o.shape[-1] for n, o in probe_outputs(model, ["layer1", "layer2", "layer3", "layer4"], x).items()}
    assert sides == {"layer1": 28, "layer2": 14, "layer3": 7, "layer4": 4}
    assert gradcam_layer(model, x)[0] == "layer3"
