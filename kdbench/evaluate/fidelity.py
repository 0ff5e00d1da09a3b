"""How faithful and how well calibrated a student is, beyond accuracy.

Columns that KD frameworks rarely report, all on the test split:

- ``teacher_agreement``: share of images where the student's top-1 class is the teacher's
  (multilabel: share of (image, label) decisions at probability 0.5 that match). A student
  can gain accuracy while disagreeing with its teacher; distillation claims agreement.
- ``ece``: expected calibration error (Guo et al., ICML 2017), 15 equal-width confidence
  bins, |accuracy - mean confidence| weighted by the share of images in the bin; top-1
  confidence for binary/multiclass, every (image, label) probability for multilabel.
- ``balanced_accuracy``: the mean of the per-class recalls (scikit-learn), which the
  majority class cannot inflate on imbalanced sets (BreastMNIST is 73% malignant-free);
  multilabel: the mean over labels of each label's balanced accuracy.
- ``recall_per_class``: ``{class name: recall}`` (multilabel: per label, at 0.5).
- ``auc_per_class``: ``{class name: one-vs-rest ROC AUC}`` (multilabel: per label).
- ``test_correct``: which test images the model got right (binary/multiclass), packed, for
  the paired bootstrap intervals of the gains over scratch (report/intervals.py).
- ``test_scores``: binary tasks only, each test image's probability of the positive class
  (float32, packed), for DeLong intervals of the AUC gains (report/delong.py). Binary
  only: DeLong's variance is that of one ROC curve, and storing the full probability
  matrix of a many-class set would multiply runs.jsonl's size by the number of classes.
  ``test_labels`` (binary only, packed bits like ``test_correct``) holds the test labels
  beside them, so the interval needs nothing but runs.jsonl.
- ``test_auc_influence``: many-class tasks, each test image's influence on the macro
  one-vs-rest AUC (evaluate/auc_influence.py): one float per image, written like
  ``test_scores``, from which the macro-AUC gain gets DeLong's interval all the same.
"""

from __future__ import annotations

import base64
import warnings

import numpy as np
from sklearn.metrics import balanced_accuracy_score, recall_score

from kdbench.evaluate.predictive import one_vs_rest_auc

#: Confidence bins of the expected calibration error (Guo et al. use 15).
ECE_BINS = 15


def teacher_agreement(student_logits: np.ndarray, teacher_logits: np.ndarray, task: str) -> float:
    if task == "multilabel":
        return float(((student_logits > 0) == (teacher_logits > 0)).mean())
    return float((student_logits.argmax(1) == teacher_logits.argmax(1)).mean())


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, task: str, bins: int = ECE_BINS) -> float:
    if task == "multilabel":
        confidence = np.where(probs >= 0.5, probs, 1 - probs).ravel()
        correct = ((probs >= 0.5) == (np.asarray(y) > 0.5)).ravel()
    else:
        confidence = probs.max(1)
        correct = probs.argmax(1) == np.asarray(y)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(ece)


def class_metrics(probs: np.ndarray, y: np.ndarray, task: str, class_names) -> dict:
    """``balanced_accuracy``, ``recall_per_class`` and ``auc_per_class`` (dicts by class name).

    A class with no image in the test split has no recall: ``None`` (null in runs.jsonl), not
    0, which would read as a class the model always misses. ``balanced_accuracy`` leaves such a
    class out, as scikit-learn does. ``auc_per_class`` is each class's one-vs-rest ROC AUC (each
    label's, multilabel: the chest X-ray papers' per-finding AUC), ``None`` where the test split
    has no positive or no negative for it; the row's ``auc`` is their mean (binary: the positive
    class's AUC, the same for both classes).
    """
    y = np.asarray(y)
    names = [str(c) for c in class_names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a class absent from the test split has no recall
        if task == "multilabel":
            pred = (probs >= 0.5).astype(int)
            truth = (y > 0.5).astype(int)
            per_label = [balanced_accuracy_score(truth[:, j], pred[:, j]) for j in range(truth.shape[1])]
            recalls = [recall_score(truth[:, j], pred[:, j], zero_division=np.nan) for j in range(truth.shape[1])]
            aucs = [one_vs_rest_auc(truth[:, j], probs[:, j]) for j in range(truth.shape[1])]
            return {"balanced_accuracy": float(np.mean(per_label)), "recall_per_class": _by_name(names, recalls),
                    "auc_per_class": _by_name(names, aucs)}
        pred = probs.argmax(1)
        recalls = recall_score(y, pred, labels=np.arange(len(names)), average=None, zero_division=np.nan)
        aucs = [one_vs_rest_auc((y == k).astype(int), probs[:, k]) for k in range(len(names))]
        if len(names) == 2:
            aucs = [aucs[1], aucs[1]]  # one binary AUC (of class 0's probability it is 1 - the same)
        return {"balanced_accuracy": float(balanced_accuracy_score(y, pred)), "recall_per_class": _by_name(names, recalls),
                "auc_per_class": _by_name(names, aucs)}


def _by_name(names: list[str], recalls) -> dict:
    """Recalls by class name, ``None`` where undefined (JSON has no NaN)."""
    return {n: (float(r) if np.isfinite(r) else None) for n, r in zip(names, recalls)}


def encode_correct(correct: np.ndarray) -> str:
    """Per-image correctness as ``"<n>:<base64 of the packed bits>"`` (a few hundred characters per row).

    Stored in every predictive row, so confidence intervals of gains can be computed from
    runs.jsonl alone (paired by image), long after the run and without its checkpoints.
    """
    bits = np.asarray(correct, dtype=bool).ravel()
    return f"{bits.size}:{base64.b64encode(np.packbits(bits).tobytes()).decode('ascii')}"


def decode_correct(text: str) -> np.ndarray:
    n, _, data = str(text).partition(":")
    bits = np.unpackbits(np.frombuffer(base64.b64decode(data), dtype=np.uint8))
    return bits[:int(n)].astype(bool)


def encode_scores(scores: np.ndarray) -> str:
    """Per-image scores as ``"<n>:<base64 of little-endian float32>"`` (about 5.4 characters per image)."""
    values = np.asarray(scores, dtype="<f4").ravel()
    return f"{values.size}:{base64.b64encode(values.tobytes()).decode('ascii')}"


def decode_scores(text: str) -> np.ndarray:
    n, _, data = str(text).partition(":")
    values = np.frombuffer(base64.b64decode(data), dtype="<f4")
    if values.size != int(n):
        raise ValueError(f"test_scores holds {values.size} values, its header says {n}")
    return values.astype(np.float64)
