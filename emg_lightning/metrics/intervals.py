"""Uncertainty of a cross-validation figure (pure functions over pooled predictions).

With 22 subjects the unit of independent evidence is the subject, not the window: windows and records of one person
are correlated, so intervals resample subjects (a subject-clustered bootstrap), never windows. A subject-level
count k of N is a binomial proportion: its interval is the exact Clopper-Pearson one. Across training seeds (which
vary the network, not the data): mean, standard deviation and a t interval of the mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 2000


def clopper_pearson(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Exact two-sided binomial interval for k successes of n."""
    if n <= 0:
        return math.nan, math.nan
    alpha = 1 - level
    low = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def subject_bootstrap(
    subjects: Sequence[str],
    statistic: Callable[[np.ndarray], float],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> tuple[float, float]:
    """Percentile interval of ``statistic(unit positions)`` when whole subjects are resampled with replacement.

    ``subjects[i]`` is the subject of unit i (a window or a record); ``statistic`` receives the positions of the
    resampled units (a subject drawn twice contributes its units twice). Resamples whose statistic is undefined
    (NaN) are left out."""
    subjects = np.asarray(subjects)
    names = np.unique(subjects)
    if len(names) < 2:
        return math.nan, math.nan
    members = [np.flatnonzero(subjects == s) for s in names]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        drawn = rng.integers(0, len(names), len(names))
        value = statistic(np.concatenate([members[i] for i in drawn]))
        if not math.isnan(value):
            values.append(value)
    if not values:
        return math.nan, math.nan
    alpha = 1 - level
    return float(np.quantile(values, alpha / 2)), float(np.quantile(values, 1 - alpha / 2))


def seed_summary(values: Sequence[float], level: float = LEVEL) -> dict[str, float]:
    """Mean, sample standard deviation and the t interval of the mean across training seeds."""
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=float)
    if len(v) == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0, "low": math.nan, "high": math.nan}
    mean = float(v.mean())
    if len(v) == 1:
        return {"mean": mean, "std": 0.0, "n": 1, "low": math.nan, "high": math.nan}
    std = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1)) * std / math.sqrt(len(v))
    return {"mean": mean, "std": std, "n": int(len(v)), "low": mean - half, "high": mean + half}
