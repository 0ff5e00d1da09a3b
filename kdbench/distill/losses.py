"""Loss conventions, written down once (see docs in README "Loss conventions").

- Task loss: cross-entropy for binary and multiclass (binary uses two logits), BCE with
  logits for multilabel.
- Hinton KD term: ``T^2 * KL(p_t(T) || p_s(T))`` with ``reduction="batchmean"``.
- Multilabel KD term: per label, the Bernoulli KL between teacher probability
  ``sigmoid(t/T)`` and student ``sigmoid(s/T)``, averaged over labels and batch, times
  ``T^2``. It equals sigmoid BCE against the teacher probabilities minus the teacher's
  entropy, so its gradient is the BCE's, and it is exactly zero when s == t.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def task_loss(logits: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    if task == "multilabel":
        return F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype))
    return F.cross_entropy(logits, y)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float, task: str) -> torch.Tensor:
    """Temperature-scaled distillation term (Hinton et al. 2015), task-aware."""
    s, t = student_logits / T, teacher_logits / T
    if task == "multilabel":
        p_t = torch.sigmoid(t)
        bce = F.binary_cross_entropy_with_logits(s, p_t, reduction="none")
        entropy = F.binary_cross_entropy_with_logits(t, p_t, reduction="none")
        return (bce - entropy).mean() * T * T
    return F.kl_div(F.log_softmax(s, dim=1), F.log_softmax(t, dim=1), reduction="batchmean", log_target=True) * T * T


def hard_targets(teacher_logits: torch.Tensor, task: str) -> torch.Tensor:
    """The teacher's predicted class (or label set, at probability 0.5)."""
    if task == "multilabel":
        return (teacher_logits > 0).to(teacher_logits.dtype)
    return teacher_logits.argmax(dim=1)
