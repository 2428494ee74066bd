"""emg-cv end to end on tiny synthetic data: all folds, rerun skips, resume after a crash, a failing fold."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, TINY_DATA

pytestmark = pytest.mark.slow


def run_cv(cv_dir, *args):
    result = subprocess.run(
        [sys.executable, "-m", "emg_lightning.cli.cv", *TINY_DATA, *args, f"cv_dir={cv_dir}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return result


def pooled(cv_dir):
    summary = json.loads((cv_dir / "cv_summary.json").read_text())
    return summary["pooled"], summary["per_fold"]


def test_group_kfold_cv_reruns_resumes_and_reproduces(tmp_path):
    cv_dir = tmp_path / "cv"
    first = run_cv(cv_dir, "split=group_kfold", "split.k=3")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "3 folds x 1 seed(s) = 3 jobs" in first.stdout and "[emg-cv] 3/3 done" in first.stdout
    for name in ("cv_summary.json", "cv_summary.md", "confusion_matrices.png", "per_fold_accuracy.png"):
        assert (cv_dir / name).is_file()
    assert sorted(p.name for p in (cv_dir / "seed_0").iterdir()) == ["fold_00", "fold_01", "fold_02"]
    reference = pooled(cv_dir)
    md = (cv_dir / "cv_summary.md").read_text()
    assert "Split: `group_kfold`, 3 folds; subject-independent" in md and "| subject |" in md

    again = run_cv(cv_dir, "split=group_kfold", "split.k=3")
    assert again.returncode == 0 and again.stdout.count("already finished") == 3
    assert pooled(cv_dir) == reference

    # a fold killed after its last checkpoint, and a fold lost entirely: only they run again
    (cv_dir / "seed_0" / "fold_01" / "metrics.json").unlink()
    (cv_dir / "seed_0" / "fold_01" / "predictions.csv").unlink()
    shutil.rmtree(cv_dir / "seed_0" / "fold_02")
    resumed = run_cv(cv_dir, "split=group_kfold", "split.k=3")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.count("already finished") == 1 and "fold 1, seed 0: resuming from" in resumed.stdout
    assert pooled(cv_dir) == reference  # identical final numbers


def test_loso_cv_with_two_seeds_and_a_failing_fold(tmp_path):
    cv_dir = tmp_path / "cv"
    broken = cv_dir / "seed_1" / "fold_03"
    broken.mkdir(parents=True)
    (broken / "config.yaml").write_text("something: else\n")  # a folder from another configuration
    result = run_cv(cv_dir, "seeds=[0,1]")
    assert result.returncode == 1  # the failure is reported ...
    assert "6 folds x 2 seed(s) = 12 jobs" in result.stdout
    assert "fold 3, seed 1 failed" in result.stderr and "run the same command again" in result.stderr
    summary = json.loads((cv_dir / "cv_summary.json").read_text())
    assert len(summary["per_fold"]) == 11  # ... and the other folds are kept
    assert summary["failed"][0]["fold"] == 3 and "other settings" in summary["failed"][0]["error"]
    assert summary["seeds"] == [0, 1] and summary["protocol"] == {"split": "loso", "leaky": False}
    assert summary["pooled"]["subject"]["per_seed"]["0"]["n"] == 6


def test_cv_bad_settings_are_one_line(tmp_path):
    result = run_cv(tmp_path / "cv", "seeds=[a]")
    assert result.returncode == 2 and result.stderr.strip() == (
        "error: seeds=[a] must be a list of integers, e.g. seeds=[0,1,2]"
    )
