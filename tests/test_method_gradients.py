"""Every loss term of every method moves the student, and a term that does not fails the job."""

import textwrap
from pathlib import Path

import pytest
import torch

from kdbench.builtins.datasets import synthetic
from kdbench.builtins.models import smallcnn
from kdbench.distill.methods.at import AttentionTransfer
from kdbench.distill.methods.dkd import DKD
from kdbench.distill.methods.e2kd import E2KD
from kdbench.distill.methods.fitnets import FitNets
from kdbench.distill.methods.hinton import Hinton
from kdbench.distill.methods.medtex import MedTex
from kdbench.distill.methods.scratch import Scratch
from kdbench.distill.methods.term_check import (
    DeadLossTermError,
    check_terms_move_student,
)
from kdbench.distill.models import create_model
from kdbench.errors import ConfigError
from kdbench.testing import run_tiny_benchmark

METHODS = [Scratch, Hinton, FitNets, AttentionTransfer, DKD, E2KD, MedTex]


@pytest.fixture(scope="module", params=[28, 32])
def data(request):
    return synthetic(n_train=16, n_val=8, n_test=8, image_size=request.param)


def student_of(name, info):
    if name == "smallcnn":
        return smallcnn(info.num_classes, info.in_chans)
    return create_model(name, {}, num_classes=info.num_classes, in_chans=info.in_chans, image_size=info.image_size)


@pytest.mark.parametrize("student_name", ["mobilenetv3_small_050", "smallcnn"])
@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.method_name)
def test_every_term_gives_the_readme_students_a_nonzero_gradient(cls, student_name, data):
    info = data.info
    torch.manual_seed(0)
    teacher = create_model("resnet18", {}, num_classes=info.num_classes, in_chans=info.in_chans,
                           image_size=info.image_size)
    method = cls(student_of(student_name, info), teacher, info)
    method.train()
    out = method(data.train.x[:8], data.train.y[:8])
    required = set(cls.required_terms) & set(out)
    # every term the method declares is in its output (and so checked here), but FitNets' kd, which only
    # its two_stage schedule's second stage has: a method that stopped returning a term fails here
    assert required == set(cls.required_terms) - ({"kd"} if cls is FitNets else set()), sorted(out)
    params = [p for p in method.deployable().parameters() if p.requires_grad]
    method.double()  # the property itself, in float64 where rounding noise cannot pass for a gradient
    out = method(data.train.x[:8].double(), data.train.y[:8])
    whole = sum(g.abs().sum() for g in torch.autograd.grad(out["loss"], params, retain_graph=True, allow_unused=True)
                if g is not None)
    for term in required:
        grads = torch.autograd.grad(out[term], params, retain_graph=True, allow_unused=True)
        size = sum(g.abs().sum() for g in grads if g is not None)
        assert size > 1e-6 * whole, f"{term}: |grad| {float(size):.2e} against {float(whole):.2e}"
    method.float()
    method.progress = 0.5  # past DKD's warm-up, whose weight is 0 at step 0 (then checked at the next steps)
    assert check_terms_move_student(method, data.train.x[:8], data.train.y[:8], set()) == required
    method.release()


def test_e2kd_on_mobilenet_explains_a_stage_of_at_least_7x7_through_a_differentiable_gate():
    info = synthetic(n_train=8, n_val=4, n_test=4, image_size=28).info
    student = create_model("mobilenetv3_small_050", {}, num_classes=3, in_chans=3, image_size=28)
    method = E2KD(student, create_model("resnet18", {}, num_classes=3, in_chans=3, image_size=28), info)
    assert method.s_layer == "blocks.0"  # 7x7 at 28 px; blocks.1, .3 and .5 are 4x4, 2x2 and 1x1
    assert method.t_layer == "layer1"  # the teacher's too: 7x7 at 28 px, where layer4 (the reference's) is 1x1
    assert not any(type(m) is torch.nn.Hardsigmoid for m in student.modules())
    x = torch.randn(2, 3, 28, 28)
    method.release()
    reference = create_model("mobilenetv3_small_050", {}, num_classes=3, in_chans=3, image_size=28)
    reference.load_state_dict(student.state_dict())  # same weights, original hardsigmoid gates
    assert torch.equal(student.eval()(x), reference.eval()(x))


def test_e2kd_refuses_a_student_with_no_stage_of_4x4():
    from kdbench.data.contract import DatasetInfo

    info = DatasetInfo("tiny", "multiclass", ("a", "b", "c"), 3, 6)  # the stem is already 3x3
    student = create_model("mobilenetv3_small_050", {}, num_classes=3, in_chans=3, image_size=6)
    with pytest.raises(ConfigError, match="smaller than 4x4"):
        E2KD(student, smallcnn(3, 3), info)


class Stub(torch.nn.Module):
    method_name = "stub"
    required_terms = ("alive", "dead")

    def __init__(self, dead):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(3))
        self.dead = dead

    def deployable(self):
        return self

    def forward(self, x, y):
        alive = (self.w * x[0, :3]).sum()
        return {"loss": alive, "alive": alive, "dead": self.dead(self.w)}


@pytest.mark.parametrize("dead", [lambda w: (w * 0).sum(), lambda w: w.sum().detach()], ids=["zero", "detached"])
def test_dead_term_is_named(dead):
    with pytest.raises(DeadLossTermError, match="stub: term dead gives no gradient to the student"):
        check_terms_move_student(Stub(dead), torch.ones(1, 3), torch.zeros(1), set())


def test_a_term_whose_float32_gradient_is_only_rounding_noise_is_dead():
    """e2KD forced onto the 1x1 stage of the default student: the cosine of two constant maps is 1 in theory,
    and its float32 gradient is rounding noise of order 1e-2; the float64 check sees it as dead."""
    info = synthetic(n_train=8, n_val=4, n_test=4, image_size=28).info
    torch.manual_seed(0)
    student = create_model("mobilenetv3_small_050", {}, num_classes=3, in_chans=3, image_size=28)
    teacher = create_model("resnet18", {}, num_classes=3, in_chans=3, image_size=28)
    method = E2KD(student, teacher, info)
    method._s_tap.remove()
    method.s_layer = "blocks.5"  # 1x1 at 28 px: what the pre-fix fallback read
    method._s_tap = method.tap(student, ["blocks.5"])
    x, y = torch.randn(8, 3, 28, 28), torch.randint(0, 3, (8,))
    method.train()
    before = {k: v.clone() for k, v in method.state_dict().items()}
    with pytest.raises(DeadLossTermError, match="e2kd: term expl gives no gradient to the student"):
        check_terms_move_student(method, x, y, set())
    assert all(torch.equal(before[k], v) for k, v in method.state_dict().items())  # restored, float32
    assert next(method.parameters()).dtype == torch.float32


BROKEN_PLUGIN = '''
import torch
import kdbench
from kdbench.api import Distiller, kd_loss, task_loss


class GhostKD(Distiller):
    """Reads the student's last stage through a detached copy: its hint never trains anything."""

    method_name = "ghostkd"
    defaults = {}

    def forward(self, x, y):
        logits = self.student(x)
        ghost = (self.student(x.detach()).detach() - self.teacher_logits(x)).pow(2).mean()
        ce = task_loss(logits, y, self.task)
        return {"loss": ce + ghost, "logits": logits, "task": ce, "ghost": ghost}


@kdbench.hookimpl
def register_methods(register):
    register("ghostkd", GhostKD)
'''


def test_a_plugin_method_whose_term_gives_no_gradient_is_a_failed_job(tmp_path, monkeypatch):
    (tmp_path / "ghost_plugin.py").write_text(textwrap.dedent(BROKEN_PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    rows = run_tiny_benchmark(tmp_path / "out", methods=["ghostkd", "hinton"], plugins=["ghost_plugin"],
                              cache_dir=tmp_path / "cache", expect_exit=1)
    by_method = {r["method"]: r for r in rows}
    assert by_method["ghostkd"]["status"] == "failed"
    assert by_method["ghostkd"]["error"].startswith("DeadLossTermError: ghostkd: term ghost gives no gradient to the student")
    assert by_method["hinton"]["status"] == "ok" and by_method["scratch"]["status"] == "ok"


class Weighted(torch.nn.Module):
    """Loss = task + weight * kd: kd moves the student on its own; whether it trains anything is its weight."""

    method_name = "weighted"
    required_terms = ("task", "kd")

    def __init__(self, weight, in_loss=True):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([1.0, 2.0, 3.0]))
        self.weight, self.in_loss, self.progress = weight, in_loss, 0.0

    def deployable(self):
        return self

    def forward(self, x, y):
        task = (self.w * x[0, :3]).sum()
        kd = (self.w ** 2).sum()
        loss = task + self.weight(self.progress) * kd if self.in_loss else task
        return {"loss": loss, "task": task, "kd": kd}


def test_a_term_with_weight_0_in_the_loss_fails_the_job_though_it_has_its_own_gradient():
    method = Weighted(lambda progress: 0.0)
    method.progress = 0.5
    with pytest.raises(DeadLossTermError, match="weighted: term kd has weight 0 in the loss"):
        check_terms_move_student(method, torch.ones(1, 3), torch.zeros(1), set())
    with pytest.raises(DeadLossTermError, match="weighted: term kd is not part of the loss"):
        check_terms_move_student(Weighted(lambda p: 1.0, in_loss=False), torch.ones(1, 3), torch.zeros(1), set())
    assert check_terms_move_student(Weighted(lambda p: 0.5), torch.ones(1, 3), torch.zeros(1), set()) == {"task", "kd"}


def test_a_weight_that_is_0_only_at_the_start_of_a_schedule_is_checked_again_later():
    """DKD's warm-up weight is 0 at step 0 (progress 0) and positive from the next step."""
    method = Weighted(lambda progress: min(progress / 0.083, 1.0))
    assert check_terms_move_student(method, torch.ones(1, 3), torch.zeros(1), set()) == {"task"}  # kd: later
    method.progress = 0.01
    assert check_terms_move_student(method, torch.ones(1, 3), torch.zeros(1), {"task"}) == {"task", "kd"}


def test_dkd_trains_through_its_warm_up_with_its_terms_checked(tmp_path):
    rows = run_tiny_benchmark(tmp_path / "out", methods=["dkd"], cache_dir=tmp_path / "cache")
    assert {r["method"]: r["status"] for r in rows if r.get("kind") != "explanation"}["dkd"] == "ok"


def test_the_plugin_template_refuses_weight_0_before_training(tmp_path, monkeypatch, capsys):
    from kdbench.cli import main

    template = Path(__file__).resolve().parents[1] / "plugins" / "kdbench-plugin-template"
    monkeypatch.syspath_prepend(str(template))
    code = main(["run", "--plugin", "kdbench_logitmatch", "--methods", "logitmatch", "--method-opt",
                 "logitmatch.weight=0", "--out", str(tmp_path / "out"), "--dry-run"])
    assert code == 2 and "weight must be > 0 (weight=0 is scratch)" in capsys.readouterr().err
