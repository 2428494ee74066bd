"""emg-compare: the paired statistics against hand-computed cases, the refusals, and the command on CV folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from emg_lightning.metrics.paired import holm, paired_bootstrap, signed_rank_test
from emg_lightning.reports.compare import compare
from emg_lightning.runtime.errors import DataError

from conftest import write_cv


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


SUBJECTS = {f"S{i:02d}": (i, "als" if i % 2 else "normal") for i in range(8)}


def test_compare_two_cvs_end_to_end(tmp_path):
    a = write_cv(tmp_path / "a", {s: 0.4 if i < 4 else 0.8 for i, s in enumerate(SUBJECTS)}, SUBJECTS)
    b = write_cv(tmp_path / "b", {s: 0.9 for s in SUBJECTS}, SUBJECTS)
    result = compare([a, b], tmp_path / "out", resamples=300)
    subject_level = result["comparisons"][0]["levels"][2]
    assert subject_level["pooled_a"] == 0.5 and subject_level["pooled_b"] == 1.0
    assert (subject_level["better_b"], subject_level["better_a"], subject_level["ties"]) == (4, 0, 4)
    assert subject_level["wilcoxon"]["p_value"] == pytest.approx(2 / 16)  # 4 equal positive ranks: 2 of 16 patterns
    # 4 subjects improved, 4 tied: the smallest exact p of 4 differences is 0.125, while the subject bootstrap
    # interval excludes 0 -- said as weak evidence, not as a win
    assert "weak evidence at subject level" in subject_level["verdict"]
    for name in ("comparison.md", "comparison.json", "paired_subjects.png"):
        assert (tmp_path / "out" / name).is_file()
    assert "Wilcoxon" in (tmp_path / "out" / "comparison.md").read_text()


def test_verdicts_for_a_clear_win_and_for_no_difference(tmp_path):
    a = write_cv(tmp_path / "a", {s: 0.4 for s in SUBJECTS}, SUBJECTS)
    b = write_cv(tmp_path / "b", {s: 0.9 for s in SUBJECTS}, SUBJECTS)
    same = write_cv(tmp_path / "same", {s: 0.4 for s in SUBJECTS}, SUBJECTS)
    result = compare([a, b, same], tmp_path / "out", resamples=300)
    win, tie = result["comparisons"]
    assert win["levels"][2]["wilcoxon"]["p_value"] == pytest.approx(2 / 256)  # 8 of 8 subjects better
    assert win["levels"][2]["verdict"].startswith("b beats a at subject level")
    assert tie["levels"][0]["verdict"].startswith("no evidence of a difference at window level")
    assert "p_adjusted" in win["levels"][0]["wilcoxon"]  # two models against one baseline: Holm


def test_compare_refuses_different_folds_and_partial_cvs(tmp_path):
    a = write_cv(tmp_path / "a", {s: 0.9 for s in SUBJECTS}, SUBJECTS)
    shuffled = {s: ((f + 1) % 8, label) for s, (f, label) in SUBJECTS.items()}
    b = write_cv(tmp_path / "b", {s: 0.9 for s in SUBJECTS}, shuffled)
    with pytest.raises(DataError, match="fold 0 tests .* not the same split"):
        compare([a, b], tmp_path / "out")
    c = write_cv(tmp_path / "c", {s: 0.9 for s in SUBJECTS}, SUBJECTS)
    (c / "cv_plan.json").write_text(json.dumps({"folds": list(range(9)), "seeds": [0], "settings": {}}))
    with pytest.raises(DataError, match="partial CV"):
        compare([a, c], tmp_path / "out")


def test_compare_refuses_a_folder_twice_and_different_test_windows(tmp_path):
    a = write_cv(tmp_path / "a", {s: 0.9 for s in SUBJECTS}, SUBJECTS)
    with pytest.raises(DataError, match="given twice"):
        compare([a, tmp_path / "." / "a"], tmp_path / "out")
    b = write_cv(tmp_path / "b", {s: 0.8 for s in SUBJECTS}, SUBJECTS)
    fold = next(b.glob("seed_0/fold_00"))
    lines = (fold / "predictions.csv").read_text().splitlines()
    (fold / "predictions.csv").write_text("\n".join(lines[:-1]) + "\n")  # one window fewer: other quality rules
    with pytest.raises(DataError, match="fold 0 tested different windows"):
        compare([a, b], tmp_path / "out")


def test_a_verdict_never_contradicts_the_direction_of_the_paired_test():
    from emg_lightning.reports.compare import verdict

    row = {"level": "record", "pooled_a": 0.70, "pooled_b": 0.74, "bootstrap_interval": [0.01, 0.07],
           "wilcoxon": {"p_value": 0.01, "w_plus": 10.0, "w_minus": 80.0}}  # fmt: skip
    # pooled accuracy favours B (one large subject), the signed ranks favour A: no winner is named
    assert "opposite directions" in verdict(row, "A", "B")
    row["wilcoxon"] = {"p_value": 0.01, "w_plus": 80.0, "w_minus": 10.0}
    assert verdict(row, "A", "B").startswith("B beats A at record level")
