"""The validation score that picks a training run's kept epoch (kdbench.evaluate.selection).

Each rule is checked against its definition computed independently, and ``fit`` is checked
to keep the weights of the epoch the rule prefers, not merely to record the rule's name.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from kdbench.evaluate.selection import SELECTION_RULES, selection_score


def _logits(n: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, classes)) * 2).astype(np.float32), rng.integers(0, classes, n)


@pytest.mark.parametrize("classes", [2, 4])
def test_loss_rule_is_minus_the_mean_cross_entropy(classes):
    logits, y = _logits(200, classes, classes)
    z = logits.astype(np.float64)
    log_softmax = z - np.log(np.exp(z).sum(1, keepdims=True))
    expected = float(np.mean(log_softmax[np.arange(len(y)), y]))  # minus the cross-entropy
    task = "binary" if classes == 2 else "multiclass"
    assert selection_score(logits, torch.from_numpy(y), task, "loss") == pytest.approx(expected, rel=1e-12)


def test_loss_rule_for_multilabel_is_minus_the_mean_binary_cross_entropy_per_label():
    rng = np.random.default_rng(7)
    logits = (rng.normal(size=(150, 3)) * 2).astype(np.float32)
    y = rng.integers(0, 2, (150, 3))
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    expected = float(np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    assert selection_score(logits, torch.from_numpy(y), "multilabel", "loss") == pytest.approx(expected, rel=1e-9)


def test_auc_rule_is_the_roc_auc_of_the_positive_class_and_macro_one_vs_rest():
    logits, y = _logits(300, 2, 1)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert selection_score(logits, y, "binary", "auc") == pytest.approx(roc_auc_score(y, p[:, 1]))
    logits, y = _logits(300, 4, 2)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert selection_score(logits, y, "multiclass", "auc") == pytest.approx(
        roc_auc_score(y, p, multi_class="ovr", average="macro"))


def test_the_rules_can_disagree_so_the_choice_matters():
    """Confident mistakes: a model right more often with over-confident errors has the better
    accuracy but the worse loss, so the rules rank the two models oppositely."""
    y = np.array([0, 1] * 50)
    sharp = np.where(np.arange(100)[:, None] < 90, np.eye(2)[y] * 8, np.eye(2)[1 - y] * 8).astype(np.float32)
    soft = np.where(np.arange(100)[:, None] < 80, np.eye(2)[y] * 1, np.eye(2)[1 - y] * 0.2).astype(np.float32)
    assert selection_score(sharp, y, "binary", "accuracy") > selection_score(soft, y, "binary", "accuracy")
    assert selection_score(sharp, y, "binary", "loss") < selection_score(soft, y, "binary", "loss")


def test_unknown_rule_is_refused():
    logits, y = _logits(10, 2, 0)
    with pytest.raises(ValueError, match="accuracy, auc, loss"):
        selection_score(logits, y, "binary", "f1")


@pytest.mark.parametrize("labels", ["true", "shifted"])
@pytest.mark.parametrize("rule", SELECTION_RULES)
def test_fit_keeps_the_weights_of_the_epoch_the_rule_prefers(rule, labels, tiny_data):
    """Every epoch's validation score is recomputed here from the model itself; the weights ``fit``
    returns must score the best of them, at the first epoch that reached it.

    With the true validation labels the model improves to its last epoch; with shifted ones
    (class c read as c + 1) learning hurts the score after a while, so the best epoch is an
    earlier one: a fit that kept the first, or the last, epoch fails one of the two.
    """
    from conftest import TinyCNN

    from kdbench.data.contract import Split
    from kdbench.distill.methods.scratch import Scratch
    from kdbench.distill.training import TrainConfig, fit
    from kdbench.evaluate.predictive import predict_logits

    torch.manual_seed(0)
    model = TinyCNN(tiny_data.info.num_classes, tiny_data.info.in_chans)
    task, val = tiny_data.info.task, tiny_data.val
    if labels == "shifted":
        val = Split(val.x, (val.y + 1) % tiny_data.info.num_classes)
    seen = []
    result = fit(Scratch(model, None, tiny_data.info), tiny_data.train, val,
                 TrainConfig(epochs=5, batch_size=16, lr=5e-3, selection=rule),
                 on_epoch=lambda e, r: seen.append(selection_score(predict_logits(model, val.x), val.y, task, rule)))
    assert [r["val"] for r in result.history] == pytest.approx(seen)
    best = int(np.argmax(seen))  # the first maximum
    assert best > 0 if labels == "true" else best < len(seen) - 1  # the case tells kept epochs apart
    assert result.best_epoch == best + 1
    assert selection_score(predict_logits(model, val.x), val.y, task, rule) == pytest.approx(seen[best])
    if rule == "loss":
        assert all(s < 0 for s in seen)


def test_teacher_selection_is_part_of_the_teacher_key_only_when_not_the_default():
    """Teachers stored before the option existed keep their keys; another rule trains another teacher."""
    from kdbench.config.benchmark import Benchmark
    from kdbench.config.identity import content_hash
    from kdbench.config.plan import teacher_settings

    default = teacher_settings(Benchmark(), "synthetic", "resnet18", 0)
    assert "selection" not in default
    assert teacher_settings(Benchmark(teacher_selection="accuracy"), "synthetic", "resnet18", 0) == default
    by_loss = teacher_settings(Benchmark(teacher_selection="loss"), "synthetic", "resnet18", 0)
    assert by_loss == {**default, "selection": "loss"} and content_hash(by_loss) != content_hash(default)


def test_another_teacher_selection_re_runs_every_student_job():
    """A student's row records agreement with its teacher, so another teacher means new student jobs."""
    from kdbench.config.benchmark import Benchmark
    from kdbench.config.plan import make_plan

    default = {j.config_hash for j in make_plan(Benchmark())}
    by_auc = {j.config_hash for j in make_plan(Benchmark(teacher_selection="auc"))}
    assert default == {j.config_hash for j in make_plan(Benchmark(teacher_selection="accuracy"))}
    assert len(by_auc) == len(default) and not by_auc & default


def test_footnote_counts_rows_from_before_the_setting_as_its_default():
    """Rows written before ``teacher_selection`` was recorded ran with accuracy: mixed with loss rows,
    the footnote must name both, not only the new one."""
    from kdbench.config.record import non_default_settings

    old = {"method": "hinton", "kind": "predictive", "epochs": 8, "teacher_epochs": 10}
    new = dict(old, teacher_selection="loss")
    explanation = {"method": "hinton", "kind": "explanation", "xai_samples": 64}  # records no training settings
    assert "teacher_selection=accuracy/loss" in non_default_settings([old, new])
    assert non_default_settings([new, explanation]) == ["teacher_selection=loss"]
    assert not any(s.startswith("teacher_selection") for s in non_default_settings([old]))
