"""Paired comparisons of two models over the same subjects (pure functions).

The unit is the subject: each contributes one paired difference (model B minus model A) of its own accuracy at a
level. The signed-rank test is Wilcoxon's, two-sided (H1: the median difference is not zero, in either direction),
zero differences dropped (Wilcoxon's convention) and tied magnitudes given their average rank; its p-value is exact
for up to ``EXACT_MAX`` non-zero differences (the null distribution of the rank sum under random signs, computed
for the ranks actually observed, ties included) and a normal approximation with tie correction beyond that.
Differences are rounded to ``DIFFERENCE_DECIMALS`` decimals before anything is ranked: per-subject accuracies are
ratios of counts, and the same difference reached through different fractions (7/15 - 6/15 and 1/15) differs in the
last bits of a float -- unrounded, equal differences would not tie and zeros would not be dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

EXACT_MAX = 60
DIFFERENCE_DECIMALS = 9  # far below any real difference of accuracies (1 / 10^6 units), far above float error


def exact_differences(differences: Sequence[float]) -> np.ndarray:
    """Paired differences rounded to ``DIFFERENCE_DECIMALS``: what is ranked, and what counts as better, worse or
    tied, so that the same difference reached through different fractions is one value."""
    return np.round(np.asarray(differences, dtype=float), DIFFERENCE_DECIMALS)


def signed_rank_test(differences: Sequence[float]) -> dict:
    """Two-sided Wilcoxon signed-rank test of paired differences, with its effect size.

    Returns n (non-zero differences), zeros, W+ and W-, the p-value, the method ("exact" or "normal
    approximation"), and the matched-pairs rank-biserial correlation (W+ - W-) / (W+ + W-): +1 when every non-zero
    difference favours B, -1 when every one favours A."""
    d = exact_differences(differences)
    nonzero = d[d != 0]
    n, zeros = len(nonzero), int(np.sum(d == 0))
    result = {"n": n, "zeros": zeros, "alternative": "two-sided"}
    if n == 0:
        return {
            **result,
            "w_plus": 0.0,
            "w_minus": 0.0,
            "p_value": 1.0,
            "method": "all differences are zero",
            "rank_biserial": 0.0,
        }
    ranks = stats.rankdata(np.abs(nonzero))  # average ranks for ties
    w_plus, w_minus = float(ranks[nonzero > 0].sum()), float(ranks[nonzero < 0].sum())
    total = w_plus + w_minus
    if n <= EXACT_MAX:
        p_value, method = _exact_two_sided(ranks, w_plus), "exact"
    else:
        _, counts = np.unique(ranks, return_counts=True)
        variance = n * (n + 1) * (2 * n + 1) / 24 - np.sum(counts**3 - counts) / 48
        z = (w_plus - total / 2) / math.sqrt(variance) if variance > 0 else 0.0
        p_value, method = float(min(1.0, 2 * stats.norm.sf(abs(z)))), "normal approximation"
    return {
        **result,
        "w_plus": w_plus,
        "w_minus": w_minus,
        "p_value": p_value,
        "method": method,
        "rank_biserial": (w_plus - w_minus) / total,
    }


def _exact_two_sided(ranks: np.ndarray, w_plus: float) -> float:
    """P(|W+ - E W+| >= |observed - E W+|) when each rank's sign is + or - with probability 1/2."""
    doubled = np.rint(ranks * 2).astype(int)  # average ranks are multiples of 1/2
    counts = np.zeros(int(doubled.sum()) + 1)
    counts[0] = 1.0
    for r in doubled:  # distribution of the sum of a random subset of the ranks
        shifted = np.zeros_like(counts)
        shifted[r:] = counts[: len(counts) - r]
        counts = counts + shifted
    probabilities = counts / counts.sum()
    sums = np.arange(len(counts))
    centre = doubled.sum() / 2
    observed = abs(2 * w_plus - centre)
    return float(min(1.0, probabilities[np.abs(sums - centre) >= observed - 1e-9].sum()))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment for several comparisons against one baseline."""
    order = np.argsort(p_values)
    adjusted = np.empty(len(p_values))
    running = 0.0
    for position, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - position) * p_values[index]))
        adjusted[index] = running
    return adjusted.tolist()


def paired_bootstrap(
    correct_a: np.ndarray,
    units_a: np.ndarray,
    correct_b: np.ndarray,
    units_b: np.ndarray,
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile interval of pooled accuracy B minus pooled accuracy A when whole subjects are resampled -- the same
    subjects for both models in each resample (the pairing). Arrays are per subject, in one order: correct units
    (windows or records, averaged over seeds) and units."""
    rng = np.random.default_rng(seed)
    n = len(units_a)
    differences = []
    for _ in range(resamples):
        drawn = rng.integers(0, n, n)
        differences.append(
            correct_b[drawn].sum() / units_b[drawn].sum() - correct_a[drawn].sum() / units_a[drawn].sum()
        )
    alpha = 1 - level
    return float(np.quantile(differences, alpha / 2)), float(np.quantile(differences, 1 - alpha / 2))
