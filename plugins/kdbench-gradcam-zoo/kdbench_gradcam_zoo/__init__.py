"""CAM explainers from pytorch-grad-cam, registered as kdbench explainers."""

from __future__ import annotations

import importlib.metadata as md
import warnings

import torch
from pytorch_grad_cam import EigenCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

import kdbench
from kdbench.api import as_map, gradcam_layer

CAMS = {
    "gradcam++": (GradCAMPlusPlus, "Grad-CAM++ (Chattopadhay et al., 2018) from pytorch-grad-cam"),
    "scorecam": (ScoreCAM, "Score-CAM (Wang et al., 2020): gradient-free, one forward pass per channel"),
    "layercam": (LayerCAM, "LayerCAM (Jiang et al., 2021): element-wise positive gradients"),
    "eigencam": (EigenCAM, "Eigen-CAM (Muhammad & Yeasin, 2020): first principal component, class-agnostic"),
    "hirescam": (HiResCAM, "HiResCAM (Draelos & Carin, 2020): element-wise gradient x activation"),
}


def _check_opencv() -> None:
    try:
        a, b = md.version("opencv-python"), md.version("opencv-python-headless")
    except md.PackageNotFoundError:
        return
    if a != b:
        warnings.warn(f"opencv-python {a} and opencv-python-headless {b} share the cv2 package but differ in "
                      f"version; reinstall both at one version (see kdbench-gradcam-zoo's README)", stacklevel=2)


_check_opencv()


def make_explainer(cam_class):
    def explain(model, x, target):
        name, is_tokens = gradcam_layer(model, x)
        layer = dict(model.named_modules())[name]
        reshape = (lambda t: as_map(t, model)) if is_tokens else None
        with cam_class(model=model, target_layers=[layer], reshape_transform=reshape) as cam:
            if cam_class is ScoreCAM:
                cam.batch_size = 64
            # an input that requires grad gives the graph even for a frozen teacher
            with torch.enable_grad():
                maps = cam(input_tensor=x.detach().clone().requires_grad_(True),
                           targets=[ClassifierOutputTarget(int(t)) for t in target])
        return torch.as_tensor(maps, dtype=torch.float32, device=x.device)[:, None]

    explain.__doc__ = f"{cam_class.__name__} from pytorch-grad-cam at kdbench's Grad-CAM layer."
    return explain


@kdbench.hookimpl
def register_explainers(register):
    for name, (cls, help_text) in CAMS.items():
        register(name, make_explainer(cls), help=help_text)
