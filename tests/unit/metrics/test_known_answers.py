"""Aggregation and interval arithmetic on cases small enough to compute by hand, each telling a plausible slip
from the definition (found by mutation testing: docs/development.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emg_lightning.metrics.aggregate import (
    _balanced_accuracy,
    aggregate,
    auroc_macro,
    bootstrap_covers,
    expected_calibration_error,
    levels_of,
    mean_std,
    pool,
    record_shares,
    seed_mean_intervals,
)
from emg_lightning.metrics.intervals import clopper_pearson, seed_summary, subject_bootstrap
from emg_lightning.runtime.errors import DataError

CLASSES = ["normal", "als"]


def row(subject, record, label, p_als, seed=0, window=0, **extra):
    return {"seed": seed, "subject": subject, "record": record, "label": label, "window": window,
            "probabilities": np.array([1 - p_als, p_als]), **extra}  # fmt: skip


# -- levels and pooling ------------------------------------------------------------------------------------------------


def test_the_levels_a_set_of_predictions_has():
    windows = [row("A", "r1", "als", 0.9), row("A", "r1", "als", 0.2, window=1)]
    records = [row("A", "r1", "als", 0.9, window=-1), row("B", "r2", "normal", 0.2, window=-1)]
    assert levels_of(windows) == ("window", "record", "subject")
    assert levels_of(records) == ("record", "subject")
    assert levels_of([]) == ("window", "record", "subject")
    with pytest.raises(DataError, match="fold 3 mix rows of whole records"):
        levels_of(windows + records[:1], "fold 3")


def test_a_records_windows_share_its_probability_by_weight_or_equally():
    rows = [row("A", "r1", "als", 0.8, weight=1.0), row("A", "r1", "als", 0.4, window=1, weight=3.0),
            row("A", "r2", "als", 0.1), row("A", "r2", "als", 0.3, window=1)]  # fmt: skip
    np.testing.assert_allclose(record_shares(rows), [0.25, 0.75, 0.5, 0.5])
    (_, p1, s1), (_, p2, _) = pool(rows, "record")
    assert s1 == "A" and p1[1] == pytest.approx(0.25 * 0.8 + 0.75 * 0.4) and p2[1] == pytest.approx(0.2)
    zero = [row("S7", "rec9", "als", 0.8, seed=4, weight=0.0), row("S7", "rec9", "als", 0.8, seed=4, weight=0.0)]
    with pytest.raises(DataError, match=r"record rec9 \(seed 4\): its windows' weights are all 0: rerun that fold"):
        record_shares(zero)
    with pytest.raises(ValueError, match=r"unknown level 'patient'; levels: \('window', 'record', 'subject'\)"):
        pool(rows, "patient")


# -- scores -----------------------------------------------------------------------------------------------------------


def test_balanced_accuracy_averages_the_recalls_of_the_classes_present():
    assert _balanced_accuracy(np.array([[2, 0, 0], [1, 1, 0], [0, 0, 0]])) == pytest.approx((1 + 0.5) / 2)
    assert _balanced_accuracy(np.array([[1, 0], [1, 1]])) == pytest.approx((1 + 0.5) / 2)  # a class of one counts


def test_auroc_with_unequal_classes_by_hand():
    # class als: its one positive (0.8) outranks two of the three negatives (0.1, 0.2; not 0.9): 2/3;
    # class normal, scored 1 - p: the same pairs: 2/3
    labels = np.array([0, 0, 0, 1])
    p_als = np.array([0.1, 0.2, 0.9, 0.8])
    assert auroc_macro(labels, np.stack([1 - p_als, p_als], axis=1)) == pytest.approx(2 / 3)


def test_ece_uses_fifteen_equal_width_bins():
    # confidences 0.5 (right) and 0.52 (wrong) share 15-bin bin 7 ((7/15, 8/15]): |0.51 - 0.5| = 0.01
    # (16 bins would part them: 0.51)
    probabilities = np.array([[0.5, 0.5], [0.48, 0.52]])
    assert expected_calibration_error(np.array([0, 0]), probabilities) == pytest.approx(0.01)
    # 0.9 (right, bin 13) and 0.95 (wrong, bin 14, the last): apart: 0.5 x 0.1 + 0.5 x 0.95
    probabilities = np.array([[0.9, 0.1], [0.95, 0.05]])
    assert expected_calibration_error(np.array([0, 1]), probabilities) == pytest.approx(0.525)
    assert math.isnan(expected_calibration_error(np.array([], dtype=int), np.empty((0, 2))))


def test_ece_with_more_classes_than_bins_uses_the_first_bin():
    # three classes, two bins: a confidence of 0.4 (wrong) is in the first bin (0, 0.5], 0.9 (right) in the second:
    # 0.5 x |0.4 - 0| + 0.5 x |0.9 - 1| = 0.25 (one bin for both would give |0.65 - 0.5| = 0.15)
    probabilities = np.array([[0.4, 0.3, 0.3], [0.9, 0.05, 0.05]])
    assert expected_calibration_error(np.array([1, 0]), probabilities, bins=2) == pytest.approx(0.25)


def test_mean_and_spread_over_folds():
    empty = mean_std([math.nan])
    assert set(empty) == {"mean", "std", "n"} and empty["n"] == 0 and math.isnan(empty["mean"] + empty["std"])
    assert mean_std([0.7]) == {"mean": 0.7, "std": 0.0, "n": 1}
    two = mean_std([math.nan, 0.5, 0.7])
    assert two["mean"] == pytest.approx(0.6) and two["std"] == pytest.approx(math.sqrt(0.02)) and two["n"] == 2


# -- intervals --------------------------------------------------------------------------------------------------------


def test_clopper_pearson_edges_in_closed_form():
    # k = 0: upper = 1 - (alpha/2)^(1/n); k = n: lower = (alpha/2)^(1/n)
    assert clopper_pearson(0, 10) == pytest.approx((0.0, 1 - 0.025**0.1))
    assert clopper_pearson(0, 1) == pytest.approx((0.0, 0.975))
    assert clopper_pearson(1, 1) == pytest.approx((0.025, 1.0))
    assert all(math.isnan(v) for v in clopper_pearson(0, 0))


def test_the_bootstrap_interval_is_the_2_5_and_97_5_percentiles_of_the_resampled_values():
    values = iter(range(2000))  # a statistic whose resampled values are 0, 1, ..., 1999 in turn
    low, high = subject_bootstrap(["a", "b"], lambda positions: float(next(values)), resamples=2000)
    assert (low, high) == pytest.approx((np.quantile(np.arange(2000), 0.025), np.quantile(np.arange(2000), 0.975)))
    assert (low, high) == pytest.approx((49.975, 1949.025))


def test_the_seed_summary_of_none_one_and_several_seeds():
    none = seed_summary([math.nan])
    assert set(none) == {"mean", "std", "n", "low", "high"} and none["n"] == 0
    assert all(math.isnan(none[k]) for k in ("mean", "std", "low", "high"))
    one = seed_summary([0.8])
    assert set(one) == {"mean", "std", "n", "low", "high"}
    assert (one["mean"], one["std"], one["n"]) == (0.8, 0.0, 1) and math.isnan(one["low"]) and math.isnan(one["high"])
    three = seed_summary([0.7, 0.8, 0.9])
    half = 4.302652729911275 * 0.1 / math.sqrt(3)  # t(0.975, 2) x s / sqrt(n)
    assert three == pytest.approx({"mean": 0.8, "std": 0.1, "n": 3, "low": 0.8 - half, "high": 0.8 + half})


def test_a_subject_level_bootstrap_needs_ten_subjects_each_way():
    assert bootstrap_covers(10, 20) and not bootstrap_covers(9, 20) and not bootstrap_covers(11, 20)


def one_per_subject(n_subjects, right, seed):
    """One record row per subject (als), the first ``right`` predicted als."""
    return [row(f"S{i:02d}", f"r{i}", "als", 0.9 if i < right else 0.1, seed=seed) for i in range(n_subjects)]


def test_several_seeds_get_a_subject_level_balanced_interval_only_when_the_bootstrap_covers():
    normal = [row(f"N{i:02d}", f"n{i}", "normal", 0.1 if i < 12 else 0.9) for i in range(24)]
    covered = {s: pool(one_per_subject(24, 12, s) + [{**r, "seed": s} for r in normal], "subject") for s in (0, 1)}
    per_seed = {s: {"confusion": [[12, 12], [12, 12]]} for s in covered}
    intervals = seed_mean_intervals(covered, CLASSES, per_seed)
    assert all(math.isfinite(v) for v in intervals["bal_acc"])
    few = {s: pool(one_per_subject(22, 21, s), "subject") for s in (0, 1)}
    per_seed = {s: {"confusion": [[0, 0], [1, 21]]} for s in few}
    assert all(math.isnan(v) for v in seed_mean_intervals(few, CLASSES, per_seed)["bal_acc"])


# -- the summary's own fields -----------------------------------------------------------------------------------------


def test_the_summary_says_how_it_pooled_which_levels_and_per_fold_level():
    windows = [{"fold": 0, "seed": 0, "rows": [row("A", "r1", "als", 0.9), row("B", "r2", "normal", 0.2)]}]
    plain = aggregate(windows, CLASSES)
    assert plain["record_pooling"] == "mean" and plain["levels"] == ["window", "record", "subject"]
    assert plain["per_fold_level"] == "window" and plain["n_folds"] == 1
    across = plain["pooled"]["window"]["across_seeds"]
    assert "n" not in across and "confusion" not in across and "intervals" not in across
    assert all("interval" not in v for v in across.values())  # one seed: no interval of a mean over seeds
    weighted = [{"fold": 0, "seed": 0, "rows": [row("A", "r1", "als", 0.9, weight=2.0)]}]
    assert aggregate(weighted, CLASSES)["record_pooling"] == "weighted (the weight column)"
    records = [{"fold": 0, "seed": 0, "rows": [row("A", "r1", "als", 0.9, window=-1)]}]
    summary = aggregate(records, CLASSES)
    assert summary["levels"] == ["record", "subject"] and summary["per_fold_level"] == "record"


def test_seeds_are_ordered_as_text_and_each_seed_pools_its_own_rows():
    folds = [
        {"fold": 0, "seed": 10, "rows": [row("A", "r1", "als", 0.9, seed=10), row("B", "r2", "normal", 0.2, seed=10)]},
        {"fold": 0, "seed": 2, "rows": [row("A", "r1", "als", 0.1, seed=2), row("B", "r2", "normal", 0.2, seed=2)]},
    ]
    summary = aggregate(folds, CLASSES)
    assert summary["seeds"] == [10, 2]  # seeds may be names: ordered as text
    per_seed = summary["pooled"]["record"]["per_seed"]
    assert per_seed["10"]["acc"] == 1.0 and per_seed["2"]["acc"] == 0.5
    assert "interval" in summary["pooled"]["record"]["across_seeds"]["acc"]


def test_the_interval_of_a_mean_over_seeds_pools_every_seed():
    # seed 1 right on every window, seed 2 wrong on every one: whichever subjects a resample draws, the mean of the
    # two seeds' accuracies is 0.5 (one seed alone would give 1 or 0)
    def windows(seed, p_als):
        return [row(s, f"{s}-r", "als", p_als, seed=seed, window=k) for s in ("A", "B", "C", "D") for k in (0, 1)]

    folds = [{"fold": 0, "seed": 1, "rows": windows(1, 0.9)}, {"fold": 0, "seed": 2, "rows": windows(2, 0.1)}]
    across = aggregate(folds, CLASSES)["pooled"]["window"]["across_seeds"]
    assert across["acc"]["mean"] == 0.5 and across["acc"]["interval"] == pytest.approx([0.5, 0.5])


def test_a_summary_of_mixed_rows_names_what_it_reads():
    folds = [{"fold": 0, "seed": 0, "rows": [row("A", "r1", "als", 0.9), row("B", "r2", "normal", 0.2, window=-1)]}]
    with pytest.raises(DataError, match="^the predictions mix rows of whole records"):
        aggregate(folds, CLASSES)
