"""Every loss term of every method moves the student, and a term that does not fails the job."""

import textwrap

import pytest
import torch

from kdbench.builtins.datasets import synthetic
from kdbench.builtins.models import smallcnn
from kdbench.errors import ConfigError
from kdbench.methods.at import AttentionTransfer
from kdbench.methods.dkd import DKD
from kdbench.methods.e2kd import E2KD
from kdbench.methods.fitnets import FitNets
from kdbench.methods.hinton import Hinton
from kdbench.methods.medtex import MedTex
from kdbench.methods.scratch import Scratch
from kdbench.methods.term_check import DeadLossTermError, check_terms_move_student
from kdbench.models import create_model
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
    assert required, "each method names at least one term that is checked"
    params = [p for p in method.deployable().parameters() if p.requires_grad]
    for term in required:  # the property itself, not through kdbench's checker
        grads = torch.autograd.grad(out[term], params, retain_graph=True, allow_unused=True)
        assert any(g is not None and g.abs().sum() > 0 for g in grads), f"{term} gives no gradient"
    assert check_terms_move_student(method, out, set()) == required
    method.release()


def test_e2kd_on_mobilenet_explains_a_stage_of_at_least_4x4_through_a_differentiable_gate():
    info = synthetic(n_train=8, n_val=4, n_test=4, image_size=28).info
    student = create_model("mobilenetv3_small_050", {}, num_classes=3, in_chans=3, image_size=28)
    method = E2KD(student, create_model("resnet18", {}, num_classes=3, in_chans=3, image_size=28), info)
    assert method.s_layer == "blocks.1"  # 4x4 at 28 px; blocks.3 and blocks.5 are 2x2 and 1x1
    assert not any(type(m) is torch.nn.Hardsigmoid for m in student.modules())
    x = torch.randn(2, 3, 28, 28)
    method.release()
    reference = create_model("mobilenetv3_small_050", {}, num_classes=3, in_chans=3, image_size=28)
    reference.load_state_dict(student.state_dict())  # same weights, original hardsigmoid gates
    assert torch.equal(student.eval()(x), reference.eval()(x))


def test_e2kd_refuses_a_student_with_no_stage_of_4x4():
    from kdbench.data import DatasetInfo

    info = DatasetInfo("tiny", "multiclass", ("a", "b", "c"), 3, 6)  # the stem is already 3x3
    student = create_model("mobilenetv3_small_050", {}, num_classes=3, in_chans=3, image_size=6)
    with pytest.raises(ConfigError, match="no stage is at least 4x4"):
        E2KD(student, smallcnn(3, 3), info)


def test_dead_term_is_named():
    class Stub(torch.nn.Module):
        method_name = "stub"
        required_terms = ("alive", "dead")

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(3))

        def deployable(self):
            return self

    m = Stub()
    out = {"loss": m.w.sum(), "alive": m.w.sum(), "dead": (m.w * 0).sum()}
    with pytest.raises(DeadLossTermError, match="stub: term dead gives no gradient to the student"):
        check_terms_move_student(m, out, set())
    out["dead"] = m.w.sum().detach()
    with pytest.raises(DeadLossTermError, match="term dead gives no gradient"):
        check_terms_move_student(m, out, set())


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
