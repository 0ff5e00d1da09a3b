"""Explainers: ``explain(model, x, target) -> Tensor (B, 1, H, W)``, float, one map per image.

captum provides the attribution algorithms; kdbench only picks layers, reduces channels
and resizes to the input. An explainer that does not apply to a model raises
:class:`kdbench.errors.NotApplicableError`; the run records that instead of failing.
"""

from kdbench.explain.explainers.captum_explainers import (
           gradcam,
           integrated_gradients,
           occlusion,
           saliency,
)
from kdbench.explain.explainers.featuremaps import featuremaps
from kdbench.explain.explainers.simple import medtex_mask, random_map

__all__ = ["gradcam", "saliency", "integrated_gradients", "occlusion", "random_map", "featuremaps",
           "medtex_mask"]
