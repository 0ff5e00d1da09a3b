"""Built-in explainers."""

from __future__ import annotations

from kdbench.explain import explainers as ex
from kdbench.hookspecs import hookimpl


@hookimpl
def register_explainers(register):
    register("gradcam", ex.gradcam)
    register("saliency", ex.saliency)
    register("integrated-gradients", ex.integrated_gradients)
    register("occlusion", ex.occlusion)
    register("random", ex.random_map)
    register("featuremaps", ex.featuremaps)
    register("medtex-mask", ex.medtex_mask)
