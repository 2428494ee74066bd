"""The paired statistics of emg-compare (emg_lightning.metrics.paired) against hand-computed cases and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from emg_lightning.metrics.paired import holm, paired_bootstrap, signed_rank_test


def test_signed_rank_matches_scipy_exact_without_ties():
    d = [1, 2, 3, -4, 5, 6, 7, 8, 9, 10, 11, -12]
    ours = signed_rank_test(d)
    assert ours["p_value"] == pytest.approx(stats.wilcoxon(d, method="exact").pvalue)
    assert ours["w_minus"] == 16 and ours["w_plus"] == 62 and ours["method"] == "exact"
    assert ours["rank_biserial"] == pytest.approx((62 - 16) / 78)


def test_signed_rank_with_ties_and_zeros_by_hand():
    # zero dropped; |d| = .05, .1, .1, .2, .3 -> ranks 1, 2.5, 2.5, 4, 5; W- = 1 (the -0.05), W+ = 14.
    # Under random signs (32 equally likely sign patterns) |W+ - 7.5| >= 6.5 needs W+ in {0, 1, 14, 15}:
    # W+ = 0 and 15 once each, W+ = 1 and 14 once each (only rank 1 alone) -> p = 4 / 32.
    result = signed_rank_test([0.1, -0.05, 0.2, 0.0, 0.1, 0.3])
    assert result["n"] == 5 and result["zeros"] == 1
    assert (result["w_plus"], result["w_minus"]) == (14.0, 1.0)
    assert result["p_value"] == pytest.approx(4 / 32) and result["alternative"] == "two-sided"


def test_equal_differences_reached_through_different_fractions_tie():
    # 7/15 - 6/15 and 1/15 differ in a float's last bits; 0.1 + 0.2 - 0.3 is a zero that is not 0.0.
    # Exactly: |d| = 1/15, 1/15, 2/15, 3/15 -> ranks 1.5, 1.5, 3, 4 (sum 10), W- = 3 (the -2/15), W+ = 7. Of the 16
    # sign patterns, |W+ - 5| >= 2 for W+ in {0, 1.5, 1.5, 3, 3, 7, 7, 8.5, 8.5, 10}: p = 10 / 16.
    assert 7 / 15 - 6 / 15 != 1 / 15 and 0.1 + 0.2 - 0.3 != 0.0
    result = signed_rank_test([7 / 15 - 6 / 15, 1 / 15, -2 / 15, 3 / 15, 0.1 + 0.2 - 0.3])
    assert result["n"] == 4 and result["zeros"] == 1
    assert (result["w_plus"], result["w_minus"]) == (7.0, 3.0)
    assert result["p_value"] == pytest.approx(10 / 16)


def test_the_large_sample_branch_matches_scipy_with_ties_and_zeros():
    rng = np.random.default_rng(3)
    d = rng.integers(-4, 7, 90) / 12  # 90 subjects, many tied magnitudes and zeros
    ours = signed_rank_test(d)
    assert ours["method"] == "normal approximation" and ours["zeros"] > 0
    reference = stats.wilcoxon(d, zero_method="wilcox", correction=False, method="approx")
    assert ours["p_value"] == pytest.approx(reference.pvalue, rel=1e-9)
    # the boundary: 60 non-zero differences are exact, 61 approximate
    assert signed_rank_test(np.arange(1, 61))["method"] == "exact"
    assert signed_rank_test(np.arange(1, 62))["method"] == "normal approximation"


def test_the_exact_p_counts_sums_exactly_as_far_from_the_centre_and_no_nearer():
    # |d| = 1, 1, 2, 3 -> ranks 1.5, 1.5, 3, 4; only the 3 is positive: W+ = 4, centre 5, |W+ - 5| = 1. The 16 sign
    # patterns give W+ = 0, 1.5, 1.5, 3, 3, 4, 4.5, 4.5, 5.5, 5.5, 6, 7, 7, 8.5, 8.5, 10; at least 1 from 5 are all
    # but the four at 4.5 and 5.5: p = 12 / 16 (counting half a rank nearer as well would give 1)
    result = signed_rank_test([-1, -1, -2, 3])
    assert (result["w_plus"], result["w_minus"]) == (4.0, 6.0)
    assert result["p_value"] == pytest.approx(12 / 16)


def test_all_zero_differences_are_no_evidence():
    result = signed_rank_test([0.0, 0.0, 0.0])
    assert result["p_value"] == 1.0 and result["n"] == 0 and result["rank_biserial"] == 0.0
    assert result["w_plus"] == result["w_minus"] == 0.0 and result["zeros"] == 3
    assert result["method"] == "all differences are zero"


def test_direction_does_not_change_a_two_sided_p():
    d = np.array([0.3, 0.1, -0.2, 0.4, 0.25, 0.05])
    assert signed_rank_test(d)["p_value"] == pytest.approx(signed_rank_test(-d)["p_value"])
    assert signed_rank_test(d)["rank_biserial"] == pytest.approx(-signed_rank_test(-d)["rank_biserial"])


def test_holm_by_hand():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.6, 0.7]) == [1.0, 1.0]  # 2 x 0.6: capped at 1, never a "probability" above it


def test_paired_bootstrap_of_identical_models_is_zero():
    correct = np.array([3.0, 1.0, 4.0])
    units = np.array([4.0, 4.0, 4.0])
    assert paired_bootstrap(correct, units, correct, units, resamples=200) == (0.0, 0.0)
    low, high = paired_bootstrap(correct, units, units, units, resamples=500)  # B always right
    assert 0 <= low <= high <= 1 and high > 0  # 0 only when every drawn subject was already always right


def test_the_paired_bootstrap_against_scipys_paired_percentile_bootstrap():
    rng = np.random.default_rng(7)
    units = rng.integers(5, 30, 40).astype(float)  # 40 subjects, 5-29 windows each, widely varying differences
    correct_a = rng.binomial(units.astype(int), 0.6).astype(float)
    correct_b = np.clip(correct_a + rng.integers(-8, 12, 40), 0, units)
    low, high = paired_bootstrap(correct_a, units, correct_b, units, resamples=20000, seed=3)

    def difference(ca, ua, cb, ub):
        return cb.sum() / ub.sum() - ca.sum() / ua.sum()

    reference = stats.bootstrap(
        (correct_a, units, correct_b, units), difference, paired=True, vectorized=False, n_resamples=20000,
        method="percentile", confidence_level=0.95, random_state=2,
    ).confidence_interval  # fmt: skip
    # within Monte Carlo error (measured 0.0002); a 96.7 % lower end (alpha / 3) would sit 0.008 lower
    assert low == pytest.approx(reference.low, abs=0.003) and high == pytest.approx(reference.high, abs=0.003)
    # the same seed gives the same interval (a comparison is reproducible)
    assert paired_bootstrap(correct_a, units, correct_b, units, resamples=500, seed=3) == paired_bootstrap(
        correct_a, units, correct_b, units, resamples=500, seed=3
    )


def test_the_paired_bootstrap_draws_every_subject():
    # only subject 0 differs (0 of 10 right under A, 10 of 10 under B): resamples that draw it show a gain
    correct_a, correct_b, units = np.array([0.0, 5.0]), np.array([10.0, 5.0]), np.array([10.0, 10.0])
    low, high = paired_bootstrap(correct_a, units, correct_b, units, resamples=400)
    assert low == 0.0 and high == pytest.approx(1.0)  # drawn twice: +1; never drawn: 0
