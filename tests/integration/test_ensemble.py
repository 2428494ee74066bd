"""emg-ensemble: mean probabilities per window against hand-computed cases, seed pairing, the refusals, and the
ensemble folder read back by emg-cv-report and emg-compare like any CV."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emg_lightning.cli.ensemble import main as ensemble_main
from emg_lightning.reports.compare import compare
from emg_lightning.reports.ensemble import build_ensemble
from emg_lightning.run_files.predictions import read_predictions
from emg_lightning.runtime.errors import DataError

from conftest import run_main, write_cv

SUBJECTS = {f"S{i:02d}": (i, "als" if i % 2 else "normal") for i in range(6)}


def p_true(path, subject):
    """The probability of the true class of each window of ``subject`` in a predictions.csv, by window."""
    classes, rows = read_predictions(path)
    return {r["window"]: r["probabilities"][classes.index(r["label"])] for r in rows if r["subject"] == subject}


def test_each_window_gets_the_mean_of_the_members_probabilities(tmp_path):
    a = write_cv(tmp_path / "a", {s: 0.4 for s in SUBJECTS}, SUBJECTS)
    b = write_cv(tmp_path / "b", {s: 0.9 for s in SUBJECTS}, SUBJECTS)
    summary = build_ensemble([a, b], tmp_path / "ab")
    fold = tmp_path / "ab" / "seed_0" / "fold_03"
    # windows 1-3: (0.4 + 0.9) / 2; window 0 of each member is halfway to 0.5: (0.45 + 0.7) / 2
    assert p_true(fold / "predictions.csv", "S03") == pytest.approx({0: 0.575, 1: 0.65, 2: 0.65, 3: 0.65})
    assert summary["name"] == "ensemble of a + b" and summary["complete"] is True
    assert summary["pooled"]["window"]["across_seeds"]["acc"]["mean"] == 1.0  # every window's mean is above 0.5
    assert (tmp_path / "ab" / "cv_summary.md").is_file() and (tmp_path / "ab" / "ensemble.json").is_file()
    metrics = json.loads((fold / "metrics.json").read_text())
    assert metrics["test_subjects"] == ["S03"] and metrics["ensemble_of"] == [str(a), str(b)]
    # read back like any CV: emg-compare pairs it with a member
    result = compare([a, tmp_path / "ab"], tmp_path / "cmp", resamples=200)
    assert result["comparisons"][0]["levels"][0]["pooled_b"] == 1.0


def test_a_one_seed_member_is_reused_for_every_seed_of_the_others(tmp_path):
    deterministic = write_cv(tmp_path / "features", {s: 0.6 for s in SUBJECTS}, SUBJECTS)
    network = tmp_path / "network"
    for seed, p in ((0, 0.8), (1, 1.0)):
        write_cv(network, {s: p for s in SUBJECTS}, SUBJECTS, seed=seed)
    summary = build_ensemble([deterministic, network], tmp_path / "ens")
    assert sorted(p.name for p in (tmp_path / "ens").glob("seed_*")) == ["seed_0", "seed_1"]
    for seed, expected in ((0, 0.7), (1, 0.8)):
        probabilities = p_true(tmp_path / "ens" / f"seed_{seed}" / "fold_00" / "predictions.csv", "S00")
        assert probabilities[3] == pytest.approx(expected)
    assert summary["seeds"] == [0, 1]


def test_refusals_name_what_differs_and_leave_nothing_behind(tmp_path):
    a = write_cv(tmp_path / "a", {s: 0.9 for s in SUBJECTS}, SUBJECTS)
    shuffled = {s: ((f + 1) % 6, label) for s, (f, label) in SUBJECTS.items()}
    other_split = write_cv(tmp_path / "b", {s: 0.9 for s in SUBJECTS}, shuffled)
    with pytest.raises(DataError, match="not the same split"):
        build_ensemble([a, other_split], tmp_path / "out")
    fewer = write_cv(tmp_path / "c", {s: 0.9 for s in SUBJECTS}, SUBJECTS)
    predictions = fewer / "seed_0" / "fold_02" / "predictions.csv"
    predictions.write_text("\n".join(predictions.read_text().splitlines()[:-1]) + "\n")  # one window fewer
    with pytest.raises(DataError, match=r"fold 2 tested different windows \(e.g. .* in one only\): the data settings"):
        build_ensemble([a, fewer], tmp_path / "out")
    two_seeds, three_seeds = tmp_path / "d", tmp_path / "e"
    for seed in (0, 1):
        write_cv(two_seeds, {s: 0.9 for s in SUBJECTS}, SUBJECTS, seed=seed)
    for seed in (0, 1, 2):
        write_cv(three_seeds, {s: 0.9 for s in SUBJECTS}, SUBJECTS, seed=seed)
    with pytest.raises(DataError, match="must share them"):
        build_ensemble([two_seeds, three_seeds], tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))
    with pytest.raises(DataError, match="already exists"):
        build_ensemble([a, a], tmp_path / "a")


def test_emg_ensemble_command(tmp_path, capsys):
    a = write_cv(tmp_path / "a", {s: 0.6 for s in SUBJECTS}, SUBJECTS)
    b = write_cv(tmp_path / "b", {s: 0.7 for s in SUBJECTS}, SUBJECTS)
    command = [a, b, "--out", tmp_path / "ab"]
    code, out, err = run_main(ensemble_main, command, capsys)
    assert code == 0, err[-2000:]
    assert "ensemble of a + b" in out and "| window |" in out
    code, _, err = run_main(ensemble_main, command, capsys)
    assert code == 2 and "already exists" in err and "Traceback" not in err
    np.testing.assert_allclose(
        list(p_true(tmp_path / "ab" / "seed_0" / "fold_01" / "predictions.csv", "S01").values())[1:], 0.65
    )
