"""KD methods ("distillers", after mdistiller): one small file per method.

A method is an ``nn.Module`` built from ``(student, teacher, info, **options)`` whose
``forward(x, y)`` returns a dict with ``loss``, ``logits`` and named loss terms. Extra
trainable parts (a FitNets regressor, the MED-TEX explainer) are its own parameters.
The teacher is frozen, kept in eval mode and run under ``torch.no_grad()``.
"""

from kdbench.distill.methods.base import Distiller, parse_option_value

__all__ = ["Distiller", "parse_option_value"]
