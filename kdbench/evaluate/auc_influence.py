"""Each test image's influence on a many-class model's macro one-vs-rest AUC.

Why: the AUC gain of a method over ``scratch`` needs a confidence interval on every set,
not only the binary ones where DeLong's per-image *placements* (report/delong.py) give it.
A bootstrap of the macro AUC would need each model's full probability matrix stored in
runs.jsonl (classes x images floats per row); DeLong's method needs only one number per
image once it is written in its influence-function form, which covers several one-vs-rest
AUCs whose positive and negative sets differ from class to class.

For class ``k`` with ``m_k`` positive and ``n_k`` negative test images out of ``N``, and
AUC ``A_k`` (ties count one half, as in scikit-learn), DeLong's placements are
``V10_k(i)``, the share of negatives a positive image outranks, and ``V01_k(j)``, the share
of positives that outrank a negative image. An image's influence on ``A_k`` is

    IF_k(i) = (V10_k(i) - A_k) / pi_k        if i is of class k      (pi_k = m_k / N)
    IF_k(i) = (V01_k(i) - A_k) / (1 - pi_k)  otherwise

and on the macro AUC ``phi(i) = mean_k IF_k(i)``. Its mean over the test images is 0, and
``var(phi) / N`` is the variance of the macro AUC: for one class it is DeLong's
``S10 / m + S01 / n`` with population instead of sample variances. Two models scored on
the same images have the paired gain variance ``var(phi_a - phi_b) / N``, which is what
report/intervals.py computes from the stored ``test_auc_influence`` columns.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def outranked(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The counts behind DeLong's placements, for ``k`` score vectors on the same images.

    ``scores``: ``(k, n_images)``; ``labels``: boolean, True for the positive class. Returns
    (``k x m``) per positive image the number of negatives it outranks, and (``k x n``) per
    negative image the number of positives it outranks; ties count one half (midranks, as in
    ``sklearn.metrics.roc_auc_score``). Counts, not shares, so that sums of them are exact;
    report/delong.py builds its covariance from the same counts.
    """
    rank_all = rankdata(scores, axis=1)
    return (rank_all[:, labels] - rankdata(scores[:, labels], axis=1),
            rank_all[:, ~labels] - rankdata(scores[:, ~labels], axis=1))


def macro_auc_influence(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``phi``: per test image, its influence on the macro one-vs-rest AUC of ``probs``.

    ``probs``: ``(n_images, n_classes)``; ``y``: integer labels. Raises ``ValueError`` when a
    class has no positive or no negative test image (its AUC, and the macro AUC, are undefined).
    """
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y).ravel().astype(int)
    n, k = probs.shape
    phi = np.zeros(n)
    for c in range(k):
        pos = y == c
        m = int(pos.sum())
        if m == 0 or m == n:
            raise ValueError(f"class {c} has {m} of {n} test images: its one-vs-rest AUC is undefined")
        [below_pos], [below_neg] = outranked(probs[None, :, c], pos)
        v10 = below_pos / (n - m)  # per positive: share of negatives it outranks
        v01 = 1.0 - below_neg / m  # per negative: share of positives that outrank it
        auc = float(v10.mean())
        pi = m / n
        phi[pos] += (v10 - auc) / pi
        phi[~pos] += (v01 - auc) / (1 - pi)
    return phi / k
