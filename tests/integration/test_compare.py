"""emg-compare on CV folders: the report, its verdicts and its refusals (the paired statistics themselves:
tests/unit/metrics/test_paired.py)."""

from __future__ import annotations

import json

import pytest

from emg_lightning.reports.compare import compare
from emg_lightning.runtime.errors import DataError

from conftest import write_cv

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
