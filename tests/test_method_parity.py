"""Each method's loss against values computed here from its paper's equations.

The expected values are written out independently in float64 (explicit softmaxes,
sums and 1x1 convolutions as einsums), not with kdbench's helpers, so a slip in kdbench's
code cannot be repeated in the reference. docs/methods.md states the same equations.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdbench.data.contract import DatasetInfo
from kdbench.distill.losses import kd_loss
from kdbench.distill.methods.at import attention_map
from kdbench.distill.methods.dkd import DKD, dkd_loss
from kdbench.distill.methods.e2kd import E2KD
from kdbench.distill.methods.fitnets import FitNets
from kdbench.distill.methods.medtex import VIDAdapter, area_budget

rng = np.random.default_rng(0)


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def t32(a):
    return torch.tensor(a, dtype=torch.float32)


def test_hinton_multiclass_is_t2_times_kl_teacher_to_student_batchmean():
    s, t, T = rng.normal(size=(5, 4)) * 3, rng.normal(size=(5, 4)) * 3, 4.0
    ps, pt = softmax(s / T), softmax(t / T)
    expected = T * T * np.mean(np.sum(pt * (np.log(pt) - np.log(ps)), axis=1))
    assert kd_loss(t32(s), t32(t), T, "multiclass").item() == pytest.approx(expected, rel=1e-5)


def test_hinton_multilabel_is_t2_times_mean_bernoulli_kl():
    s, t, T = rng.normal(size=(5, 3)) * 3, rng.normal(size=(5, 3)) * 3, 2.0
    qs, qt = 1 / (1 + np.exp(-s / T)), 1 / (1 + np.exp(-t / T))
    kl = qt * np.log(qt / qs) + (1 - qt) * np.log((1 - qt) / (1 - qs))
    assert kd_loss(t32(s), t32(t), T, "multilabel").item() == pytest.approx(T * T * kl.mean(), rel=1e-4)


def dkd_reference(s, t, y, T):
    """TCKD and NCKD from Zhao et al. (2022), Eq. 2-4, in float64."""
    n, c = s.shape
    ps, pt = softmax(s / T), softmax(t / T)
    tckd = nckd = 0.0
    for i in range(n):
        bs = np.array([ps[i, y[i]], 1 - ps[i, y[i]]])
        bt = np.array([pt[i, y[i]], 1 - pt[i, y[i]]])
        tckd += np.sum(bt * np.log(bt / bs))
        others = [j for j in range(c) if j != y[i]]
        qs, qt = softmax(s[i:i + 1, others] / T)[0], softmax(t[i:i + 1, others] / T)[0]
        nckd += np.sum(qt * np.log(qt / qs))
    return T * T * tckd / n, T * T * nckd / n


def test_dkd_terms_match_the_papers_equations():
    s, t = rng.normal(size=(6, 5)) * 2, rng.normal(size=(6, 5)) * 2
    y = rng.integers(0, 5, 6)
    tckd, nckd = dkd_reference(s, t, y, 4.0)
    total, got_t, got_n = dkd_loss(t32(s), t32(t), torch.tensor(y), 2.0, 8.0, 4.0)  # alpha != 1: it is applied
    assert got_t.item() == pytest.approx(tckd, rel=1e-4, abs=1e-7)
    assert got_n.item() == pytest.approx(nckd, rel=1e-4, abs=1e-7)
    assert total.item() == pytest.approx(2 * tckd + 8 * nckd, rel=1e-4)


def test_dkd_keeps_a_finite_nonzero_tckd_gradient_for_a_saturated_student():
    """A clamp before the log (p_rest -> 1e-12) would make this gradient exactly 0."""
    s = torch.tensor([[900.0, 0.0, 0.0]], requires_grad=True)  # p_rest underflows to 0 in float32
    t = torch.tensor([[1.0, 0.5, 0.0]])
    _, tckd, _ = dkd_loss(s, t, torch.tensor([0]), 1.0, 8.0, 1.0)
    (g,) = torch.autograd.grad(tckd, s)
    assert torch.isfinite(tckd) and torch.isfinite(g).all() and g.abs().sum() > 0


def test_dkd_total_is_task_plus_ramped_weighted_terms():
    class Fixed(torch.nn.Module):
        def __init__(self, out):
            super().__init__()
            self.out, self.w = out, torch.nn.Parameter(torch.zeros(()))

        def forward(self, x):
            return self.out + self.w

    s, t = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    y = rng.integers(0, 4, 6)
    info = DatasetInfo("d", "multiclass", ("a", "b", "c", "d"), 3, 8)
    method = DKD(Fixed(t32(s)), Fixed(t32(t)), info, alpha=2.0, beta=3.0)  # weights that show they are applied
    tckd, nckd = dkd_reference(s, t, y, 4.0)
    ce = -np.mean(np.log(softmax(s)[np.arange(6), y]))
    for progress, ramp in [(0.0, 0.0), (0.0415, 0.5), (0.5, 1.0)]:
        method.progress = progress
        got = method(torch.zeros(6, 3, 8, 8), torch.tensor(y))["loss"].item()
        assert got == pytest.approx(ce + ramp * (2 * tckd + 3 * nckd), rel=1e-4)


def test_dkd_refuses_two_classes_because_nckd_would_be_identically_zero():
    from kdbench.builtins.models import TinyCNN
    from kdbench.errors import UnsupportedTaskError

    info = DatasetInfo("two", "binary", ("a", "b"), 3, 32)
    with pytest.raises(UnsupportedTaskError, match="NCKD is identically 0"):
        DKD(TinyCNN(2), TinyCNN(2), info)


def test_attention_transfer_map_is_normalised_channel_mean_of_power():
    f = rng.normal(size=(2, 3, 4, 4))
    q = (np.abs(f) ** 2).mean(axis=1).reshape(2, -1)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    np.testing.assert_allclose(attention_map(t32(f), 2.0).numpy(), q, rtol=1e-5)
    g = rng.normal(size=(2, 5, 4, 4))
    r = (np.abs(g) ** 2).mean(axis=1).reshape(2, -1)
    r = r / np.linalg.norm(r, axis=1, keepdims=True)
    expected = ((q - r) ** 2).mean()
    got = (attention_map(t32(f), 2.0) - attention_map(t32(g), 2.0)).pow(2).mean()
    assert got.item() == pytest.approx(expected, rel=1e-5)
    for p in (1.5, 3.0):  # |f|^p, not f^p: an odd or fractional power of a negative activation
        q = (np.abs(f) ** p).mean(axis=1).reshape(2, -1)
        np.testing.assert_allclose(attention_map(t32(f), p).numpy(), q / np.linalg.norm(q, axis=1, keepdims=True),
                                   rtol=1e-5)


def _hooked(model, names):
    """Register forward hooks on ``names`` of ``model``; returns (store, handles)."""
    store, modules = {}, dict(model.named_modules())
    handles = [modules[n].register_forward_hook(lambda m, i, o, n=n: store.update({n: o})) for n in names]
    return store, handles


def _ce(logits, target):
    return -np.mean(np.log(softmax(logits)[np.arange(len(target)), target]))


def _at_map(f, p=2.0):
    q = (np.abs(f) ** p).mean(axis=1).reshape(len(f), -1)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def test_attention_transfer_loss_sums_every_stage_after_the_stem_as_the_references(plugins):
    """resnet18 -> mobilenetv3_small_050 at 28 px, the published benchmarks' pair. mdistiller's
    ``feats[1:]`` (ImageNet ResNet: layer1-layer4) are every stage after the stem; layer4 is 1x1
    here, a constant map, and is dropped. The expected loss is written out from hooked stage
    outputs: CE + 1000 * sum over pairs of mean((A_s - A_t)^2)."""
    from kdbench.distill.methods.at import AttentionTransfer
    from kdbench.distill.models import create_model

    torch.manual_seed(0)
    info = DatasetInfo("blood-like", "multiclass", tuple("abcdefgh"), 3, 28)
    make = lambda name: create_model(name, plugins.models, num_classes=8, in_chans=3, image_size=28)  # noqa: E731
    student, teacher = make("mobilenetv3_small_050"), make("resnet18").eval()
    method = AttentionTransfer(student, teacher, info)
    s_layers, t_layers = ["blocks.0", "blocks.1", "blocks.3"], ["layer1", "layer2", "layer3"]
    assert method.pairs == list(zip(s_layers, t_layers))
    s_store, s_h = _hooked(student, s_layers)
    t_store, t_h = _hooked(teacher, t_layers)
    x, y = torch.randn(6, 3, 28, 28), torch.tensor([0, 1, 2, 3, 4, 5])
    method.train()
    out = method(x, y)
    for h in s_h + t_h:
        h.remove()
    expected_at = 0.0
    for s_name, t_name in zip(s_layers, t_layers):
        fs, ft = s_store[s_name].detach().double().numpy(), t_store[t_name].detach().double().numpy()
        assert fs.shape[-2:] == ft.shape[-2:]  # 7x7, 4x4, 2x2: no pooling in this pair
        expected_at += ((_at_map(fs) - _at_map(ft)) ** 2).mean()
    ce = _ce(out["logits"].detach().double().numpy(), y.numpy())
    assert out["at"].item() == pytest.approx(expected_at, rel=1e-4)
    assert out["loss"].item() == pytest.approx(ce + 1000 * expected_at, rel=1e-4)
    # stages=k keeps only the last k stages (kdbench's default before it followed the references)
    assert AttentionTransfer(student, teacher, info, stages=3).pairs == list(zip(s_layers[1:], t_layers[1:]))


def conv1x1(w, f):
    """A 1x1 convolution written as an einsum: w (out, in), f (B, in, H, W)."""
    return np.einsum("oi,bihw->bohw", w, f)


def test_fitnets_hint_is_mse_of_relu_bn_conv_regressor_on_the_smaller_map(tiny_data):
    """kdbench's ``hint_loss`` itself: regressor, then the larger map average-pooled to the smaller, then MSE."""
    from kdbench.builtins.models import TinyCNN

    method = FitNets(TinyCNN(3, widths=(8, 16)), TinyCNN(3), tiny_data.info)
    reg = method.regressor
    assert [type(m).__name__ for m in reg] == ["Conv2d", "BatchNorm2d", "ReLU"] and reg[0].bias is not None
    cs, ct = reg[0].in_channels, reg[0].out_channels
    fs = rng.normal(size=(4, cs, 8, 8))
    ft = np.maximum(rng.normal(size=(4, ct, 4, 4)), 0)  # the teacher's map is half the student's
    w, b = reg[0].weight.detach().double().numpy()[:, :, 0, 0], reg[0].bias.detach().double().numpy()
    z = conv1x1(w, fs) + b[None, :, None, None]
    mu, var = z.mean(axis=(0, 2, 3), keepdims=True), z.var(axis=(0, 2, 3), keepdims=True)
    h = np.maximum((z - mu) / np.sqrt(var + reg[1].eps), 0)  # BN in training mode, weight 1, bias 0
    h = h.reshape(4, ct, 4, 2, 4, 2).mean(axis=(3, 5))  # 2x2 average pooling to the teacher's 4x4
    expected = ((h - ft) ** 2).mean()
    method.train()
    method._s_tap.features[method.s_layer] = t32(fs)
    got = method.hint_loss({f"feature:{method.t_layer}": t32(ft)})
    assert got.item() == pytest.approx(expected, rel=1e-4)


def test_fitnets_two_stage_is_the_hint_alone_then_hinton_kd(tiny_data):
    """Romero et al.'s schedule: before ``hint_fraction`` (0.3) of training the loss is the hint
    alone; from it on, (1 - alpha) * CE + alpha * T^2 * KL(p_t || p_s), alpha=0.9, T=4."""
    from kdbench.builtins.models import TinyCNN

    torch.manual_seed(4)
    student, teacher = TinyCNN(3, widths=(8, 16)), TinyCNN(3).eval()
    method = FitNets(student, teacher, tiny_data.info, two_stage=True)
    x, y = tiny_data.train.x[:6], tiny_data.train.y[:6]
    method.train()
    method.progress = 0.29
    out = method(x, y)
    assert set(out) == {"loss", "logits", "hint"} and out["loss"].item() == out["hint"].item()
    method.progress = 0.3
    out = method(x, y)
    assert "hint" not in out
    s = out["logits"].detach().double().numpy()
    with torch.no_grad():
        t = teacher(x).double().numpy()
    ps, pt = softmax(s / 4), softmax(t / 4)
    kd = 16 * np.mean(np.sum(pt * (np.log(pt) - np.log(ps)), axis=1))
    ce = _ce(s, y.numpy())
    assert out["kd"].item() == pytest.approx(kd, rel=1e-4)
    assert out["loss"].item() == pytest.approx(0.1 * ce + 0.9 * kd, rel=1e-4)


def test_vid_is_gaussian_nll_with_softplus_variance_and_bias_free_regressor():
    adapter = VIDAdapter(6, 4)
    convs = [m for m in adapter.regressor if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3 and all(c.bias is None for c in convs)
    var0 = math.log1p(math.exp(adapter.log_scale[0].item())) + 1e-5
    assert var0 == pytest.approx(5.0, rel=1e-6)  # init_pred_var of the reference
    with torch.no_grad():
        adapter.log_scale.copy_(torch.tensor([0.1, -0.5, 1.0, 2.0]))
    fs, ft = rng.normal(size=(3, 6, 4, 4)), rng.normal(size=(3, 4, 4, 4))
    w = [c.weight.detach().double().numpy()[:, :, 0, 0] for c in convs]
    mean = conv1x1(w[2], np.maximum(conv1x1(w[1], np.maximum(conv1x1(w[0], fs), 0)), 0))
    var = np.log1p(np.exp(np.array([0.1, -0.5, 1.0, 2.0]))) + 1e-5
    nll = 0.5 * ((mean - ft) ** 2 / var[None, :, None, None] + np.log(var)[None, :, None, None])
    assert adapter(t32(fs), t32(ft)).item() == pytest.approx(nll.mean(), rel=1e-5)


def test_medtex_budget_is_the_squared_mass_of_all_but_the_k_largest_mask_values():
    m = rng.uniform(size=(3, 1, 10, 10))
    keep = 0.2
    expected = np.mean([np.sum(np.sort(row.ravel())[:80] ** 2) / 100 for row in m])
    assert area_budget(t32(m), keep).item() == pytest.approx(expected, rel=1e-5)
    binary = torch.zeros(2, 1, 10, 10)
    binary[:, :, :2, :] = 1  # exactly 20 pixels kept
    assert area_budget(binary, keep).item() == 0
    assert area_budget(torch.full((2, 1, 10, 10), 0.3), keep).item() == pytest.approx(0.8 * 0.09, rel=1e-5)


def test_e2kd_explanation_term_is_one_minus_cosine_of_input_size_gradcams(tiny_data):
    """Grad-CAM (Selvaraju et al.) of the teacher's top-1 class at each model's CAM layer,
    resized bilinearly to the input, 1 - cosine per image, batch mean (the reference code)."""
    from kdbench.builtins.models import TinyCNN

    torch.manual_seed(1)
    student, teacher = TinyCNN(3, widths=(8, 16)), TinyCNN(3)
    method = E2KD(student, teacher, tiny_data.info)
    assert (method.s_layer, method.t_layer) == ("stages.1", "stages.2")  # deepest stages of >= 7x7: 16x16, 8x8
    x = tiny_data.train.x[:6]
    method.train()
    student.eval()  # fixed batch-norm statistics, so the reference forward below sees the same network
    got = method(x, tiny_data.train.y[:6])["expl"].item()

    import copy

    xd = x.double()

    def gradcam(model, layer, target):  # float64 copies of the networks
        model = copy.deepcopy(model).double()
        store = {}
        h = dict(model.named_modules())[layer].register_forward_hook(lambda m, i, o: store.update(a=o))
        logits = model(xd)
        h.remove()
        a = store["a"]
        (g,) = torch.autograd.grad(logits[torch.arange(len(x)), target].sum(), a)
        cam = F.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(1, keepdim=True))
        return F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False).flatten(1)

    with torch.enable_grad():
        target = teacher(x).argmax(1)
        ct, cs = gradcam(teacher, method.t_layer, target), gradcam(student, method.s_layer, target)
    cos = (ct * cs).sum(1) / (ct.norm(dim=1) * cs.norm(dim=1))
    assert got == pytest.approx((1 - cos).mean().item(), rel=1e-4, abs=1e-6)


def test_e2kd_reference_preset_is_the_official_configuration(tiny_data):
    from kdbench.builtins.models import TinyCNN

    m = E2KD(TinyCNN(3, widths=(8, 16)), TinyCNN(3), tiny_data.info, preset="reference")
    assert (m.opts["T"], m.opts["alpha"], m.opts["lam"]) == (1.0, 1.0, 1.0)
    m = E2KD(TinyCNN(3, widths=(8, 16)), TinyCNN(3), tiny_data.info, preset="reference", lam=5)
    assert m.opts["lam"] == 5.0 and m.opts["T"] == 1.0


def test_fitnets_total_is_ce_plus_beta_times_the_hint_of_the_middle_stages(tiny_data):
    """The whole forward: CE(s, y) + 100 * mean((ReLU(BN(W f_s + b)) - f_t)^2) on the middle stages."""
    from kdbench.builtins.models import TinyCNN

    torch.manual_seed(2)
    student, teacher = TinyCNN(3, widths=(8, 16)), TinyCNN(3).eval()
    method = FitNets(student, teacher, tiny_data.info)
    assert (method.s_layer, method.t_layer) == ("stages.1", "stages.1")  # names[len // 2] of (2, 3) stages
    s_store, s_h = _hooked(student, ["stages.1"])
    t_store, t_h = _hooked(teacher, ["stages.1"])
    x, y = tiny_data.train.x[:6], tiny_data.train.y[:6]
    method.train()
    out = method(x, y)
    for h in s_h + t_h:
        h.remove()
    fs, ft = s_store["stages.1"].detach().double().numpy(), t_store["stages.1"].detach().double().numpy()
    reg = method.regressor
    w, b = reg[0].weight.detach().double().numpy()[:, :, 0, 0], reg[0].bias.detach().double().numpy()
    z = conv1x1(w, fs) + b[None, :, None, None]
    mu, var = z.mean(axis=(0, 2, 3), keepdims=True), z.var(axis=(0, 2, 3), keepdims=True)
    h = np.maximum((z - mu) / np.sqrt(var + reg[1].eps), 0)
    hint = ((h - ft) ** 2).mean()
    ce = _ce(out["logits"].detach().double().numpy(), y.numpy())
    assert out["hint"].item() == pytest.approx(hint, rel=1e-4)
    assert out["loss"].item() == pytest.approx(ce + 100 * hint, rel=1e-4)


def test_e2kd_total_weights_ce_kd_and_explanation_as_stated(tiny_data):
    """(1 - alpha) * CE + alpha * T^2 * KL(p_t || p_s) + lam * expl, with alpha=0.9, T=4 and lam=3 (not its
    default 1, so that a method ignoring lam fails)."""
    from kdbench.builtins.models import TinyCNN

    torch.manual_seed(3)
    method = E2KD(TinyCNN(3, widths=(8, 16)), TinyCNN(3), tiny_data.info, lam=3.0)
    x, y = tiny_data.train.x[:6], tiny_data.train.y[:6]
    method.train()
    out = method(x, y)
    s = out["logits"].detach().double().numpy()
    with torch.no_grad():
        t = method.teacher(x).double().numpy()
    ps, pt = softmax(s / 4), softmax(t / 4)
    kd = 16 * np.mean(np.sum(pt * (np.log(pt) - np.log(ps)), axis=1))
    ce = _ce(s, y.numpy())
    assert out["kd"].item() == pytest.approx(kd, rel=1e-4)
    expected = 0.1 * ce + 0.9 * kd + 3.0 * out["expl"].item()  # expl itself: the test above
    assert out["loss"].item() == pytest.approx(expected, rel=1e-4)


def test_medtex_objective_is_ce_to_the_teacher_plus_vid_budget_and_preservation(tiny_data):
    """CE(S(x_m), argmax t) + w_vid * VID + w_budget * B(m) + w_preserve * CE(teacher(x_m), argmax t), with
    x_m = m x + (1 - m) f, the student's stages read on x_m and the teacher's on x; weights 0.5, 4 and 2
    (not the defaults 1, 10 and 1, so that a method ignoring one fails)."""
    from kdbench.builtins.models import TinyCNN
    from kdbench.distill.methods.medtex import MedTex

    torch.manual_seed(4)
    student, teacher = TinyCNN(3, widths=(8, 16)), TinyCNN(3).eval()
    method = MedTex(student, teacher, tiny_data.info, vid_weight=0.5, budget_weight=4.0, preserve_weight=2.0)
    assert method.pairs == [("stages.0", "stages.1"), ("stages.1", "stages.2")] and len(method.vid) == 2
    method.eval()  # fixed statistics and a fixed fill image, so the reference below sees the same networks
    with torch.no_grad():
        method.model.fill_image.copy_(torch.randn_like(method.model.fill_image))
    x = tiny_data.train.x[:6]
    s_store, s_h = _hooked(student, ["stages.0", "stages.1"])
    t_store, t_h = _hooked(teacher, ["stages.1", "stages.2"])
    out = method(x, tiny_data.train.y[:6])  # the labels are not used: MED-TEX learns the teacher's predictions
    feats_s = {n: v.detach().double().numpy() for n, v in s_store.items()}
    with torch.no_grad():
        teacher(x)  # the teacher's stages on the clean image (the forward above last saw it on x_m)
        feats_t = {n: v.double().numpy() for n, v in t_store.items()}
        t = teacher(x).double().numpy()
        m = method.explainer(x).double().numpy()
        xm = m * x.double().numpy() + (1 - m) * method.model.fill_image.double().numpy()
        s_on_xm = student(t32(xm)).double().numpy()
        t_on_xm = teacher(t32(xm)).double().numpy()
    for n, f in feats_s.items():  # the stages VID read are the student's on x_m (the hooks just saw it on x_m)
        np.testing.assert_allclose(s_store[n].double().numpy(), f, rtol=1e-4, atol=1e-5)
    for h in s_h + t_h:
        h.remove()
    target = t.argmax(1)
    vid = 0.0
    for adapter, (sn, tn) in zip(method.vid, method.pairs):
        fs, ft = feats_s[sn], feats_t[tn]
        r = fs.shape[-1] // ft.shape[-1]  # the larger map is average-pooled to the smaller (here by 2)
        fs = fs.reshape(*fs.shape[:2], ft.shape[-2], r, ft.shape[-1], r).mean(axis=(3, 5))
        w = [c.weight.detach().double().numpy()[:, :, 0, 0] for c in adapter.regressor if isinstance(c, torch.nn.Conv2d)]
        mean = conv1x1(w[2], np.maximum(conv1x1(w[1], np.maximum(conv1x1(w[0], fs), 0)), 0))
        v = np.log1p(np.exp(adapter.log_scale.detach().double().numpy())) + 1e-5
        vid += (0.5 * ((mean - ft) ** 2 / v[None, :, None, None] + np.log(v)[None, :, None, None])).mean()
    flat = np.sort(m.reshape(len(m), -1), axis=1)
    k = round(0.1 * flat.shape[1])
    budget = np.mean((flat[:, :flat.shape[1] - k] ** 2).sum(1) / flat.shape[1])
    ce, preserve = _ce(s_on_xm, target), _ce(t_on_xm, target)
    for name, value in (("task", ce), ("vid", vid), ("budget", budget), ("preserve", preserve)):
        assert out[name].item() == pytest.approx(value, rel=1e-4), name
    assert out["loss"].item() == pytest.approx(ce + 0.5 * vid + 4 * budget + 2 * preserve, rel=1e-4)
