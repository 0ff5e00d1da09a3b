"""The validation score that picks a training run's kept epoch.

``fit`` keeps the first epoch with the highest score. The default, ``accuracy``, is what
kdbench always used (macro AUC for multilabel tasks, so there ``auc`` is the same rule). On a
small validation split accuracy moves in steps of one image and ties often, so the kept epoch
can change with a CPU's float rounding; the references choose otherwise: MedMNIST v2 on
validation AUC, MedMNIST+ on the lowest validation loss. ``benchmarks/teacher_selection.py``
measures the three side by side.
"""

from __future__ import annotations

import numpy as np
import torch

from kdbench.evaluate.predictive import predictive_metrics, probabilities

#: The rules a benchmark's ``teacher_selection`` may name; the first is the default.
SELECTION_RULES = ("accuracy", "auc", "loss")


def _auc(probs: np.ndarray, y: np.ndarray, task: str) -> float:
    """(Macro) AUC; accuracy where the split lacks a class and AUC is undefined."""
    m = predictive_metrics(probs, y, task)
    return m["auc"] if not np.isnan(m["auc"]) else m["accuracy"]


def _accuracy(probs: np.ndarray, y: np.ndarray, task: str) -> float:
    """Single-label accuracy (the arg-max of the same probabilities ``accuracy_score`` is given), or
    macro AUC for multilabel, computed directly: it runs once per epoch of every job."""
    if task != "multilabel":
        return float(np.mean(probs.argmax(1) == y))
    return _auc(probs, y, task)


def _negative_loss(logits: np.ndarray, y: np.ndarray, task: str) -> float:
    """Minus the mean cross-entropy (binary cross-entropy per label for multilabel): higher is better."""
    t = torch.from_numpy(np.asarray(logits, dtype=np.float64))
    target = torch.from_numpy(np.asarray(y))
    if task == "multilabel":
        loss = torch.nn.functional.binary_cross_entropy_with_logits(t, target.to(t.dtype))
    else:
        loss = torch.nn.functional.cross_entropy(t, target.long())
    return -float(loss)


def selection_score(logits: np.ndarray, y, task: str, rule: str = "accuracy") -> float:
    """The validation score of ``logits`` under ``rule``: higher is better for every rule."""
    y = y.cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if rule == "accuracy":
        return _accuracy(probabilities(logits, task), y, task)
    if rule == "auc":
        return _auc(probabilities(logits, task), y, task)
    if rule == "loss":
        return _negative_loss(logits, y, task)
    raise ValueError(f"unknown selection rule {rule!r}; choose one of {', '.join(SELECTION_RULES)}")
