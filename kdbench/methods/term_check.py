"""Every loss term proves, at run time, that it moves the student.

Why: a distillation term can look fine in the logs and still give the student no
gradient: a Grad-CAM read at a 1x1 stage is a per-image constant, an attention map of a
1x1 stage normalises to 1, a feature hooked from a detached copy never reaches the
weights. The method then silently becomes another one (e2KD became Hinton KD this way).
The trainer therefore takes, the first time each term appears in a job, the gradient of
that term alone with respect to the deployed model's trainable parameters, and fails the
job with a one-line reason when it is missing or exactly zero.

Which terms are checked: a method lists them in ``Distiller.required_terms``; a method
that lists none (a plugin written before this contract) has every named scalar it returns
checked, so nothing is exempt by default.
"""

from __future__ import annotations

import torch

from ..errors import KdbenchError

#: Keys of a method's output that are not loss terms.
RESERVED = ("loss", "logits")


class DeadLossTermError(KdbenchError):
    """A loss term gives the student no gradient: the job fails rather than report another method."""


def terms_to_check(method, out: dict) -> list[str]:
    """The loss terms of ``out`` that must carry gradient to the student."""
    declared = getattr(method, "required_terms", None)
    if declared is not None:
        return [name for name in declared if name in out]
    return [k for k, v in out.items()
            if k not in RESERVED and isinstance(v, torch.Tensor) and v.dim() == 0]


def check_terms_move_student(method, out: dict, already: set[str], scale: float = 1.0) -> set[str]:
    """Raise :class:`DeadLossTermError` for the first term in ``out`` that cannot train the student.

    ``already`` holds the terms checked earlier in this job (a term such as FitNets'
    second-stage KD appears only later); the returned set adds the ones checked now.
    The check uses ``retain_graph=True``, so the step's own backward pass is unaffected;
    ``scale`` is the AMP gradient scale, so that float16 gradients do not underflow to 0.
    """
    name = getattr(method, "method_name", type(method).__name__)
    params = [p for p in method.deployable().parameters() if p.requires_grad]
    checked = set(already)
    for term in terms_to_check(method, out):
        if term in checked:
            continue
        value = out[term]
        if not isinstance(value, torch.Tensor) or not value.requires_grad:
            raise DeadLossTermError(
                f"{name}: term {term} gives no gradient to the student (it is detached or constant; "
                f"return loss terms with their graph, kdbench detaches them for logging)")
        grads = torch.autograd.grad(value.float() * scale, params, retain_graph=True, allow_unused=True)
        if not any(g is not None and bool(g.abs().sum() > 0) and bool(torch.isfinite(g).all()) for g in grads):
            raise DeadLossTermError(f"{name}: term {term} gives no gradient to the student")
        checked.add(term)
    return checked
