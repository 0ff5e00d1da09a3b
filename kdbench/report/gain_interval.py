"""A gain's 95% interval from its two sources of variation: the test sample and the seeds.

Every seed's models are scored on the same test images, so a seed-averaged gain over
``scratch`` varies with the test sample (variance ``V``: DeLong's for an AUC gain, a
paired bootstrap's over the images for an accuracy gain) and with the seeds (``s² / S``,
``s²`` the between-seed variance of the ``S`` per-seed gains). ``s²`` rests on ``S - 1``
degrees of freedom, two with three seeds, and a normal quantile would claim a certainty
that three seeds cannot give. The interval therefore uses Student's t with the
Welch-Satterthwaite degrees of freedom of ``V + s² / S``, ``V`` counted as exact (it comes
from hundreds of images):

    nu = (V + s²/S)² / ((s²/S)² / (S - 1)),        gain ± t_nu · sqrt(V + s²/S)

``nu`` runs from ``S - 1``, where the seeds dominate, to infinity, where the images do
(the normal interval). ``s²`` also holds the part of the test-sample noise that differs
between seeds, which ``V`` already counts: the interval errs wide, not narrow.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm, t


def gain_interval(gain: float, test_variance: float, per_seed: np.ndarray,
                  level: float = 0.95) -> tuple[float, float, float]:
    """``(gain, lo, hi)`` from the test-sample variance of the seed-averaged gain and the per-seed gains."""
    per_seed = np.asarray(per_seed, dtype=np.float64)
    k = len(per_seed)
    between_seeds = float(np.var(per_seed, ddof=1)) / k if k > 1 else 0.0
    total = max(test_variance, 0.0) + between_seeds
    q = 0.5 + level / 2
    if between_seeds > 0:
        dof = total ** 2 / (between_seeds ** 2 / (k - 1))
        quantile = float(t.ppf(q, dof))
    else:
        quantile = float(norm.ppf(q))
    half = quantile * float(np.sqrt(total))
    return gain, gain - half, gain + half
