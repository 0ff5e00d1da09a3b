"""Agreement with the teacher, calibration and per-class columns, checked against their definitions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kdbench.evaluate.fidelity import (
    class_metrics,
    expected_calibration_error,
    teacher_agreement,
)


def test_expected_calibration_error_matches_its_definition():
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.6, 0.4], [0.3, 0.7]])
    y = np.array([0, 1, 0, 1])
    # bins of width 1/15: {0.95, 0.95} -> acc 0.5, conf 0.95; {0.6} -> 1 vs 0.6; {0.7} -> 1 vs 0.7
    expected = 0.5 * abs(0.5 - 0.95) + 0.25 * abs(1 - 0.6) + 0.25 * abs(1 - 0.7)
    assert expected_calibration_error(probs, y, "binary") == pytest.approx(expected)
    perfect = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(perfect, np.array([0, 1]), "binary") == 0.0
    # 15 bins, not 10: 0.61 and 0.69 fall in bins 9 and 10 of 15 (one bin of 10 would give |0.5 - 0.65| = 0.15)
    near = np.array([[0.61, 0.39], [0.69, 0.31]])
    assert expected_calibration_error(near, np.array([0, 1]), "binary") == pytest.approx(0.5 * 0.39 + 0.5 * 0.69)


def test_multilabel_calibration_counts_every_label_decision():
    probs = np.array([[0.9, 0.2], [0.8, 0.6]])
    y = np.array([[1, 0], [0, 1]])
    # decisions: (0.9, right), (0.8 = 1-0.2, right), (0.8, wrong), (0.6, right)
    expected = 0.5 * abs(0.5 - 0.8) + 0.25 * abs(1 - 0.9) + 0.25 * abs(1 - 0.6)
    assert expected_calibration_error(probs, y, "multilabel") == pytest.approx(expected)


def test_teacher_agreement_and_class_metrics():
    s = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0], [2.0, 0.0, 0.0]])
    t = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    assert teacher_agreement(s, t, "multiclass") == 0.75
    assert teacher_agreement(np.array([[1.0, -1.0]]), np.array([[2.0, 1.0]]), "multilabel") == 0.5
    probs = torch.from_numpy(s).softmax(1).numpy()
    out = class_metrics(probs, np.array([0, 1, 2, 2]), "multiclass", ("a", "b", "c"))
    assert out["recall_per_class"] == {"a": 1.0, "b": 1.0, "c": 0.5}
    assert out["balanced_accuracy"] == pytest.approx(np.mean([1.0, 1.0, 0.5]))
    # a class with no test image has no recall (not 0), and balanced accuracy leaves it out
    out = class_metrics(probs, np.array([0, 1, 1, 0]), "multiclass", ("a", "b", "c"))
    assert out["recall_per_class"] == {"a": 1.0, "b": 0.5, "c": None}
    assert out["balanced_accuracy"] == pytest.approx(0.75)
    out = class_metrics(np.array([[0.9, 0.2], [0.1, 0.3]]), np.array([[1, 0], [0, 0]]), "multilabel", ("x", "z"))
    assert out["recall_per_class"] == {"x": 1.0, "z": None}
    # multilabel: the mean over labels of each label's (sensitivity + specificity) / 2;
    # x: (1/1 + 1/2) / 2 = 0.75, z: (0/2 + 0/1) / 2 = 0 (pooling the labels or averaging recalls gives 0.33 or 0.5)
    out = class_metrics(np.array([[0.9, 0.7], [0.1, 0.3], [0.8, 0.2]]), np.array([[1, 0], [0, 1], [0, 1]]),
                        "multilabel", ("x", "z"))
    assert out["balanced_accuracy"] == pytest.approx(0.375) and out["recall_per_class"] == {"x": 1.0, "z": 0.0}


def test_explanation_agreement_is_one_for_the_teacher_itself_and_lower_for_another_model(tiny_data):
    from kdbench.builtins.models import TinyCNN
    from kdbench.explain.agreement import explanation_agreement, gradcam_at_input

    torch.manual_seed(0)
    teacher, other = TinyCNN(3, 3).eval(), TinyCNN(3, 3).eval()
    x = tiny_data.test.x[:8]
    target = teacher(x).argmax(1)
    cam = gradcam_at_input(teacher, x, target)
    assert cam.shape == (8, 1, 32, 32)
    assert explanation_agreement(teacher, cam, x, target) == pytest.approx(1.0)
    assert explanation_agreement(other, cam, x, target) < 0.99


def test_every_student_row_carries_agreement_calibration_and_per_class_recall(tmp_path):
    from conftest import TINY_RUN

    from kdbench.cli import main

    assert main(["run", "--methods", "hinton", "--out", str(tmp_path), *TINY_RUN]) == 0
    rows = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    teacher = next(r for r in rows if r["method"] == "teacher")
    assert "teacher_agreement" not in teacher and 0 <= teacher["ece"] <= 1
    for r in (r for r in rows if r["method"] != "teacher"):
        assert 0 <= r["teacher_agreement"] <= 1 and 0 <= r["ece"] <= 1 and 0 <= r["balanced_accuracy"] <= 1
        assert -1 <= r["explanation_agreement"] <= 1
        assert set(r["recall_per_class"]) == {"exudate", "haemorrhage", "cotton_wool"}
    md = (tmp_path / "leaderboard.md").read_text()
    assert "Agree T. ↑" in md and "Expl. agree T. ↑" in md and "ECE ↓" in md


@pytest.mark.parametrize("classes", [2, 5])
def test_selection_score_is_the_reported_accuracy(classes):
    """The per-epoch selection computes accuracy on its own; it must equal the accuracy the rows report,
    including near-ties where two logits give the same float32 probability."""
    from kdbench.evaluate.predictive import predictive_metrics, probabilities
    from kdbench.evaluate.selection import selection_score

    gen = torch.Generator().manual_seed(classes)
    logits = torch.randn(300, classes, generator=gen) * 3
    logits[:20, 1] = logits[:20, 0] + 1e-7  # ties after softmax
    y = torch.randint(0, classes, (300,), generator=gen)
    task = "binary" if classes == 2 else "multiclass"
    reported = predictive_metrics(probabilities(logits.numpy(), task), y.numpy(), task)["accuracy"]
    assert selection_score(logits.numpy(), y, task) == reported
    assert 0.0 < reported < 1.0


def test_macro_f1_averages_the_classes_present_in_the_test_split():
    from kdbench.evaluate.predictive import predictive_metrics

    y = np.array([0, 1, 3, 0, 1, 3])  # class 2 of 4 has no test image
    one_hot = np.eye(4)
    perfect = predictive_metrics(one_hot[y], y, "multiclass")["f1"]
    once_2 = predictive_metrics(one_hot[[0, 1, 3, 0, 1, 2]], y, "multiclass")["f1"]  # the last 3 read as 2
    assert perfect == 1.0 and once_2 == pytest.approx(np.mean([1.0, 1.0, 2 / 3]))  # not (1 + 1 + 0 + 2/3) / 4
    labels = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])  # label 1 has no positive test image
    assert predictive_metrics(labels.astype(float), labels, "multilabel")["f1"] == 1.0


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_auc_per_class_is_each_one_vs_rest_auc_and_the_row_auc_their_mean(task):
    from sklearn.metrics import roc_auc_score

    from kdbench.evaluate.predictive import predictive_metrics

    rng = np.random.default_rng(0)
    if task == "multilabel":
        y = rng.integers(0, 2, (40, 3))
        y[:, 1] = 0  # no positive for label b: no AUC, left out of the mean
        probs = np.clip(y * 0.3 + rng.random((40, 3)) * 0.7, 0, 1)
        names = ("a", "b", "c")
        expected = {"a": roc_auc_score(y[:, 0], probs[:, 0]), "b": None, "c": roc_auc_score(y[:, 2], probs[:, 2])}
    else:
        k = 2 if task == "binary" else 3
        y = rng.integers(0, k, 40)
        probs = torch.from_numpy(rng.normal(size=(40, k)) + np.eye(k)[y]).softmax(1).numpy()
        names = ("a", "b", "c")[:k]
        expected = {n: roc_auc_score(y == j, probs[:, j]) for j, n in enumerate(names)}
        if task == "binary":
            expected["a"] = expected["b"]
    got = class_metrics(probs, y, task, names)["auc_per_class"]
    assert got.keys() == expected.keys()
    for n, v in expected.items():
        assert got[n] is None if v is None else got[n] == pytest.approx(v)
    defined = [v for v in expected.values() if v is not None]
    assert predictive_metrics(probs, y, task)["auc"] == pytest.approx(np.mean(defined) if task != "binary" else defined[0])


def test_flops_count_a_transformers_attention_as_its_unfused_matmuls_on_cpu():
    import timm

    from kdbench.evaluate.predictive import count_flops

    vit = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, num_classes=3, depth=2).eval()
    x = torch.randn(1, 3, 32, 32)
    fused = count_flops(vit, x)
    for block in vit.blocks:
        block.attn.fused_attn = False  # timm's explicit q @ k^T, softmax, @ v: every matmul visible
    assert fused == count_flops(vit, x) > 0
