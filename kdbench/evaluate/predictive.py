"""Predictive metrics (scikit-learn) and efficiency figures of a trained model.

- accuracy: top-1 for binary/multiclass; for multilabel the mean per-label accuracy at
  probability 0.5.
- auc: ROC AUC of the positive class (binary), macro one-vs-rest (multiclass; NaN when the
  test split lacks a class), macro over the labels that have positives and negatives in the
  test split (multilabel; a label without is left out, and shows as null in the row's
  ``auc_per_class``, :func:`kdbench.evaluate.fidelity.class_metrics`).
- f1: macro F1 over the classes present in the test split (a class no test image has would
  otherwise join the mean at 0 whenever a model predicts it); multilabel: over the labels
  with a positive test image, at 0.5.
- params: all parameters of the deployed model (MED-TEX: explainer + student).
- flops: floating-point operations per image of one forward pass, counted by
  ``torch.utils.flop_counter`` (2 per multiply-add; papers quoting MACs report half).
- latency_ms (and latency_iqr_ms): median (and interquartile range) CPU wall time of a batch-1
  forward pass, measured with torch.utils.benchmark after warm-up.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, *, device="cpu", batch_size: int = 256) -> np.ndarray:
    """Logits of ``model`` on ``x`` in eval mode, batched; the train/eval mode is restored."""
    was_training = model.training
    model.eval()
    outs = [model(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    model.train(was_training)
    return torch.cat(outs).numpy()


def probabilities(logits: np.ndarray, task: str) -> np.ndarray:
    """Softmax over classes, or per-label sigmoid for multilabel."""
    t = torch.from_numpy(logits)
    return (torch.sigmoid(t) if task == "multilabel" else t.softmax(1)).numpy()


def predictive_metrics(probs: np.ndarray, y, task: str) -> dict[str, float]:
    y = np.asarray(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if task == "multilabel":
            pred = (probs >= 0.5).astype(int)
            acc = float((pred == y).mean())
            aucs = [a for a in (one_vs_rest_auc(y[:, j], probs[:, j]) for j in range(y.shape[1])) if np.isfinite(a)]
            auc = float(np.mean(aucs)) if aucs else float("nan")
            present = [j for j in range(y.shape[1]) if y[:, j].any()]
            f1 = float(f1_score(y, pred, labels=present, average="macro", zero_division=0)) if present else 0.0
            return {"accuracy": acc, "auc": auc, "f1": f1}
        pred = probs.argmax(1)
        acc = float(accuracy_score(y, pred))
        f1 = float(f1_score(y, pred, labels=np.unique(y), average="macro", zero_division=0))
        try:
            if probs.shape[1] == 2:
                auc = float(roc_auc_score(y, probs[:, 1]))
            else:
                auc = float(roc_auc_score(y, probs, multi_class="ovr", average="macro",
                                          labels=np.arange(probs.shape[1])))
        except ValueError:
            auc = float("nan")
    return {"accuracy": acc, "auc": auc, "f1": f1}


def one_vs_rest_auc(truth: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of one class (or label) against the rest; NaN when ``truth`` holds one value only."""
    return float(roc_auc_score(truth, score)) if len(np.unique(truth)) == 2 else float("nan")


def count_flops(model: nn.Module, example: torch.Tensor) -> int:
    """FLOPs of one forward pass on one image.

    Attention runs through PyTorch's math kernel while counting: the fused CPU kernel
    (``_scaled_dot_product_flash_attention_for_cpu``) is not in the flop counter's registry,
    so a transformer's attention matmuls went uncounted on CPU (14% of a ViT-Tiny at 224 px)
    while CUDA's fused kernels were counted. CNNs have no attention: their count is unchanged.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel

    model = model.eval()
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(example[:1])
    return int(counter.get_total_flops())


def cpu_latency(model: nn.Module, example: torch.Tensor, *, min_run_time: float = 0.3,
                memory_format: torch.memory_format | None = None) -> tuple[float, float]:
    """Batch-1 CPU latency in milliseconds: (median, interquartile range), by ``torch.utils.benchmark``.

    ``Timer.blocked_autorange`` warms up, picks the number of calls per measurement and
    repeats until ``min_run_time`` seconds are spent, so a sub-millisecond model is not
    measured with timer noise; the IQR says how much the machine moved while measuring.
    Threads: torch's current setting (the caller records it in the row, ``latency_threads``).
    ``memory_format``: the layout to time the CPU copy in (the caller passes the one kdbench
    uses on CPU, so a model evaluated on CUDA in channels-last is not timed in that layout).
    """
    import logging

    quiet = logging.getLogger("torch.utils.cpp_extension")  # "No CUDA runtime is found" on CPU-only machines
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        from torch.utils import benchmark
    finally:
        quiet.setLevel(level)

    m = copy.deepcopy(model).cpu().eval()
    if memory_format is not None:
        m = m.to(memory_format=memory_format)
    x = example[:1].cpu()
    with torch.inference_mode():
        m(x)  # first call: allocations and kernel selection, not latency
        timer = benchmark.Timer(stmt="m(x)", globals={"m": m, "x": x}, num_threads=torch.get_num_threads())
        measured = timer.blocked_autorange(min_run_time=min_run_time)
    return 1000 * float(measured.median), 1000 * float(measured.iqr)

