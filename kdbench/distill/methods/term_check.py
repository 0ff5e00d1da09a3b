"""Every loss term proves, at run time, that it moves the student.

Why: a distillation term can look fine in the logs and still give the student no
gradient: a Grad-CAM read at a 1x1 stage is a per-image constant, an attention map of a
1x1 stage normalises to 1, a feature hooked from a detached copy never reaches the
weights. The method then silently becomes another one (e2KD became Hinton KD this way).
The trainer therefore takes, the first time each term appears in a job, the gradient of
that term alone with respect to the deployed model's trainable parameters, and fails the
job with a one-line reason when it is missing or zero.

The check runs in float64 on the same batch: in float32 a structurally dead term (the
cosine of two constant maps) still has a rounding-noise gradient of order 1e-2, in
float64 of order 1e-10, while a live term's gradient is a sizeable share of the loss's.
A term passes when its gradient is at least ``RELATIVE_TOLERANCE`` of the whole loss's
(both L1 norms over the parameters). Working in float64 also keeps float16 AMP out of
the check. Parameters, buffers (batch-norm statistics) and the RNG state are restored
afterwards, so training is unchanged bit for bit.

A term must also reach the loss: ``d loss / d term`` (its weight, for a weighted sum) must
exist and be non-zero, since a term with weight 0 moves nothing however large its own
gradient (FitNets with its hint weight at 0 is scratch). A weight that is 0 only at the
start of a schedule (DKD's warm-up is 0 at step 0) is checked again at the next steps;
still 0 after ``ZERO_WEIGHT_SHARE`` of training, the job fails.

Which terms are checked: a method lists them in ``Distiller.required_terms``; a method
that lists none (a plugin written before this contract) has every named scalar it returns
checked, so nothing is exempt by default.
"""

from __future__ import annotations

import torch

from kdbench.errors import KdbenchError

#: Keys of a method's output that are not loss terms.
RESERVED = ("loss", "logits")

#: A term's gradient must be at least this share of the whole loss's (float64 L1 norms).
RELATIVE_TOLERANCE = 1e-6

#: Share of training after which a term whose weight in the loss is still 0 fails the job.
ZERO_WEIGHT_SHARE = 0.1


class DeadLossTermError(KdbenchError):
    """A loss term gives the student no gradient: the job fails rather than report another method."""


def terms_to_check(method, out: dict) -> list[str]:
    """The loss terms of ``out`` that must carry gradient to the student."""
    declared = getattr(method, "required_terms", None)
    if declared is not None:
        return [name for name in declared if name in out]
    return [k for k, v in out.items()
            if k not in RESERVED and isinstance(v, torch.Tensor) and v.dim() == 0]


def _l1(grads) -> float:
    return float(sum(g.abs().sum() for g in grads if g is not None))


def check_terms_move_student(method, x: torch.Tensor, y: torch.Tensor, already: set[str],
                             teacher_batch: dict | None = None) -> set[str]:
    """Raise :class:`DeadLossTermError` for the first new term of ``method(x, y)`` that cannot train the student.

    ``already`` holds the terms checked earlier in this job (a term such as FitNets'
    second-stage KD appears only later); the returned set adds the ones checked now.
    ``teacher_batch``: the cached teacher outputs of these images; for a method that uses
    its teacher only through them (``teacher_live = False``), the check reads them in float64
    instead of converting and re-running the frozen teacher (the same constants either way).
    """
    teacher = getattr(method, "teacher", None)
    outside = teacher is not None and teacher_batch is not None and not getattr(method, "teacher_live", True)
    if outside:  # keep the frozen teacher out of the float64 conversion and the saved state
        del method._modules["teacher"]
        method.__dict__["teacher"] = teacher
        method.cached_teacher = {k: v.double() if v.is_floating_point() else v for k, v in teacher_batch.items()}
    try:
        return _check(method, x, y, already)
    finally:
        if outside:
            del method.__dict__["teacher"]
            method._modules["teacher"] = teacher
            method.cached_teacher = None


def _check(method, x: torch.Tensor, y: torch.Tensor, already: set[str]) -> set[str]:
    name = getattr(method, "method_name", type(method).__name__)
    saved = {k: v.detach().clone() for k, v in method.state_dict(keep_vars=True).items()}
    rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if x.is_cuda else None
    dtype = next(method.parameters()).dtype
    checked = set(already)
    try:
        method.double()
        with torch.autocast(x.device.type, enabled=False):
            out = method(x.double(), y.double() if y.is_floating_point() else y)
        params = [p for p in method.deployable().parameters() if p.requires_grad]
        new = [t for t in terms_to_check(method, out) if t not in checked]
        if not new:
            return checked
        whole = _l1(torch.autograd.grad(out["loss"], params, retain_graph=True, allow_unused=True))
        for term in new:
            value = out[term]
            if not isinstance(value, torch.Tensor) or not value.requires_grad:
                raise DeadLossTermError(
                    f"{name}: term {term} gives no gradient to the student (it is detached or constant; "
                    f"return loss terms with their graph, kdbench detaches them for logging)")
            size = _l1(torch.autograd.grad(value, params, retain_graph=True, allow_unused=True))
            if not size > RELATIVE_TOLERANCE * max(whole, 1e-30):
                raise DeadLossTermError(f"{name}: term {term} gives no gradient to the student "
                                        f"(|grad| {size:.1e} against {whole:.1e} for the whole loss, in float64)")
            (weight,) = torch.autograd.grad(out["loss"], value, retain_graph=True, allow_unused=True)
            if weight is None:
                raise DeadLossTermError(f"{name}: term {term} is not part of the loss (the loss does not depend "
                                        f"on it); add it to out['loss'] or stop returning it as a term")
            if float(weight.abs()) == 0.0:
                if getattr(method, "progress", 1.0) >= ZERO_WEIGHT_SHARE:
                    raise DeadLossTermError(f"{name}: term {term} has weight 0 in the loss, so it trains nothing "
                                            f"and the method is another one; give its weight a positive value")
                continue  # 0 at the start of a schedule (DKD's warm-up): checked again at the next step
            checked.add(term)
        return checked
    finally:
        method.to(dtype)
        with torch.no_grad():
            for k, v in method.state_dict(keep_vars=True).items():
                v.copy_(saved[k])
        torch.set_rng_state(rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
