"""Statistics for A/B studies: Wilson intervals, the sign test, Holm's correction, Krippendorff's alpha.

Small, dependency-light (numpy; scipy only for the exact binomial test) and tested against
hand-computed values.
"""

from __future__ import annotations

import math
from typing import Hashable, Sequence

import numpy as np

Z95 = 1.959963984540054  # the 97.5 % quantile of the standard normal


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (NaN, NaN when n == 0).

    Chosen over the normal (Wald) interval because A/B rates sit near 0 or 1 with small n,
    where Wald collapses to zero width or leaves [0, 1].
    """
    if n <= 0:
        return (math.nan, math.nan)
    if not 0 <= successes <= n:
        raise ValueError(f"successes={successes} outside 0..n={n}")
    p = successes / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    # at 0 and n the bounds are exactly 0 and 1; rounding would leave them a hair off
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return (lo, hi)


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided binomial (sign) test of wins vs losses under p = 0.5; ties are left out.

    Returns NaN when there are no decisive comparisons: with nothing to test there is no p-value
    (p = 1 would read as "tested, no difference" and would count as a test in ``holm``).
    """
    n = wins + losses
    if n == 0:
        return math.nan
    from scipy.stats import binomtest

    return float(binomtest(wins, n, 0.5, alternative="two-sided").pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaNs pass through and do not count as tests)."""
    idx = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    m = len(idx)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def krippendorff_alpha_nominal(units: Sequence[Sequence[Hashable | None]]) -> tuple[float, int]:
    """Krippendorff's alpha for nominal data.

    ``units``: one sequence of values per unit (item), one value per rater; ``None`` marks a
    missing rating. Units with fewer than two values are not pairable and are ignored. Returns
    (alpha, number of pairable values n); alpha is NaN when there is nothing to compare or no
    variation at all (expected disagreement 0).

    Uses the coincidence matrix: o_ck = sum_u (number of ordered pairs (c, k) in u) / (m_u - 1),
    n_c = sum_k o_ck, alpha = 1 - (n - 1) * sum_{c != k} o_ck / sum_{c != k} n_c n_k.
    """
    cleaned = [[v for v in u if v is not None] for u in units]
    cleaned = [u for u in cleaned if len(u) >= 2]
    values = sorted({v for u in cleaned for v in u}, key=repr)
    if not cleaned or len(values) < 1:
        return (math.nan, 0)
    index = {v: i for i, v in enumerate(values)}
    o = np.zeros((len(values), len(values)))
    for u in cleaned:
        counts = np.bincount([index[v] for v in u], minlength=len(values)).astype(float)
        # ordered pairs of different raters: c == k gives n_c (n_c - 1), c != k gives n_c n_k
        pairs = np.outer(counts, counts) - np.diag(counts)
        o += pairs / (len(u) - 1)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    observed = o.sum() - np.trace(o)
    expected = n_c.sum() ** 2 - (n_c ** 2).sum()
    if expected == 0:
        return (math.nan, int(round(n)))
    return (float(1 - (n - 1) * observed / expected), int(round(n)))
