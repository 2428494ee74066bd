"""Intervals, pooled AUROC / ECE, strict JSON and file permissions, against hand-computed cases."""

from __future__ import annotations

import json
import math
import os
import stat

import numpy as np
import pytest
import torch

from emg_lightning.metrics.aggregate import auroc_macro, expected_calibration_error, level_figures
from emg_lightning.metrics.classification import compute_stage_metrics, make_metrics
from emg_lightning.metrics.intervals import clopper_pearson, seed_summary, subject_bootstrap
from emg_lightning.runtime.files import atomic_write_json, atomic_write_text


def test_clopper_pearson_matches_known_values():
    # 21 of 22: the classical exact interval (e.g. R's binom.test(21, 22)) is [0.7716, 0.9988]
    low, high = clopper_pearson(21, 22)
    assert low == pytest.approx(0.77157, abs=1e-4) and high == pytest.approx(0.99885, abs=1e-4)
    assert clopper_pearson(22, 22)[1] == 1.0 and clopper_pearson(0, 10)[0] == 0.0
    assert clopper_pearson(22, 22)[0] == pytest.approx(0.025 ** (1 / 22), abs=1e-9)  # (alpha/2)^(1/n)


def test_subject_bootstrap_resamples_subjects_not_units():
    # two subjects, one always right (10 units), one always wrong (2 units): a resample holds either subject twice or
    # both once, so the statistic can only be 1, 0 or 10/12 -- never a mix a window bootstrap would give
    subjects = ["a"] * 10 + ["b"] * 2
    correct = np.array([1.0] * 10 + [0.0] * 2)
    seen = set()

    def statistic(positions: np.ndarray) -> float:
        value = float(correct[positions].mean())
        seen.add(round(value, 6))
        return value

    low, high = subject_bootstrap(subjects, statistic, resamples=200)
    assert seen <= {0.0, 1.0, round(10 / 12, 6)}
    assert low == 0.0 and high == 1.0
    assert math.isnan(subject_bootstrap(["a", "a"], statistic)[0])  # one subject: no interval


def test_seed_summary_t_interval():
    s = seed_summary([0.70, 0.72, 0.74])
    assert s["mean"] == pytest.approx(0.72) and s["std"] == pytest.approx(0.02)
    half = 4.302652729911275 * 0.02 / math.sqrt(3)  # t(0.975, 2)
    assert s["low"] == pytest.approx(0.72 - half) and s["high"] == pytest.approx(0.72 + half)
    assert math.isnan(seed_summary([0.7])["low"])


def test_auroc_with_ties_and_absent_classes():
    labels = np.array([0, 0, 1, 1])
    p = np.array([[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.6, 0.4, 0.0], [0.1, 0.9, 0.0]])
    # class 0: positives scores 0.9, 0.6; negatives 0.6, 0.1 -> pairs: (0.9>0.6, 0.9>0.1, 0.6=0.6 half, 0.6>0.1) = 3.5/4
    assert auroc_macro(labels, p) == pytest.approx(3.5 / 4)  # class 1 is the mirror; class 2 absent
    assert math.isnan(auroc_macro(np.array([0, 0]), p[:2]))


def test_two_perfectly_separated_classes_of_three_give_macro_auroc_1():
    collection = make_metrics(3)
    probabilities = torch.tensor([[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1]])
    collection.update(probabilities, torch.tensor([0, 0, 1, 1]))
    with pytest.warns(UserWarning):  # torchmetrics warns about the absent class; we leave it out
        scalars, _ = compute_stage_metrics(collection, ["normal", "als", "myopathy"])
    assert scalars["auroc_macro"] == pytest.approx(1.0)
    assert auroc_macro(np.array([0, 0, 1, 1]), probabilities.numpy()) == pytest.approx(1.0)


def test_expected_calibration_error_by_hand():
    labels = np.array([0, 1])
    p = np.array([[0.9, 0.1], [0.9, 0.1]])  # both at confidence 0.9, one right: |0.9 - 0.5| = 0.4
    assert expected_calibration_error(labels, p) == pytest.approx(0.4)


def test_level_figures_use_the_binomial_interval_when_each_unit_is_a_subject():
    units = [("normal", np.array([0.9, 0.1]), f"s{i}") for i in range(9)] + [("als", np.array([0.8, 0.2]), "s9")]
    figures = level_figures(units, ["normal", "als"])
    assert figures["acc"] == pytest.approx(0.9)
    assert figures["intervals"]["acc"] == pytest.approx(list(clopper_pearson(9, 10)))
    assert figures["confusion"] == [[9, 0], [1, 0]]
    assert all(type(count) is int for row in figures["confusion"] for count in row)  # counts, written as 9 not 9.0
    assert all(math.isnan(b) for b in figures["intervals"]["bal_acc"])  # no collapsed bootstrap of votes


def test_json_is_strict_and_undefined_is_null(tmp_path):
    path = tmp_path / "m.json"
    atomic_write_json(path, {"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": 0.5}})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict constant {c}")) == {
        "a": None,
        "b": [1.0, None],
        "c": {"d": 0.5},
    }


def test_result_files_keep_the_users_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "r.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.txt").stat().st_mode) == 0o644


def test_several_seeds_carry_a_subject_interval_of_their_mean():
    from emg_lightning.metrics.aggregate import aggregate

    rng = np.random.default_rng(0)
    rows = []
    for subject in range(8):
        label = ("normal", "als")[subject % 2]
        for window in range(5):
            p = float(rng.uniform(0.2, 0.9))  # probability of the true class
            probs = {label: p, ("als" if label == "normal" else "normal"): 1 - p}
            rows.append({"subject": f"S{subject}", "record": f"S{subject}r{window // 3}", "label": label,
                         "probabilities": np.array([probs["normal"], probs["als"]])})  # fmt: skip

    def folds(seeds, shift=0.0):
        out = []
        for seed in seeds:
            seeded = [
                {**r, "seed": seed, "probabilities": np.clip(r["probabilities"] + shift * seed, 0, 1)} for r in rows
            ]
            out.append({"fold": 0, "seed": seed, "rows": seeded})
        return out

    one = aggregate(folds([0]), ["normal", "als"])["pooled"]["window"]
    same = aggregate(folds([0, 1, 2]), ["normal", "als"])["pooled"]["window"]
    # a deterministic model run with three seeds: no seed spread, and the interval is still the subjects' one
    assert same["across_seeds"]["acc"]["std"] == 0.0
    assert same["across_seeds"]["acc"]["interval"] == one["per_seed"]["0"]["intervals"]["acc"]
    assert same["across_seeds"]["bal_acc"]["interval"] == one["per_seed"]["0"]["intervals"]["bal_acc"]
    low, high = same["across_seeds"]["acc"]["interval"]
    assert low < same["across_seeds"]["acc"]["mean"] < high and high - low > 0.1
    subject_level = aggregate(folds([0, 1]), ["normal", "als"])["pooled"]["subject"]["across_seeds"]["acc"]
    k = round(subject_level["mean"] * 8)
    assert subject_level["interval"] == [clopper_pearson(k, 8)[0], clopper_pearson(k, 8)[1]]


def subject_units(correct: list[bool], classes: list[str]) -> list[tuple]:
    """One unit per subject, classes in turn; a wrong subject is predicted as the next class (confident)."""
    units = []
    for i, right in enumerate(correct):
        truth = i % len(classes)
        guess = truth if right else (truth + 1) % len(classes)
        units.append((classes[truth], np.eye(len(classes))[guess] * 0.8 + 0.2 / len(classes), f"S{i:03d}"))
    return units


def test_subject_level_balanced_accuracy_interval_against_scipys_percentile_bootstrap():
    from scipy import stats

    classes = ["normal", "myopathy", "neuropathy"]
    rng = np.random.default_rng(4)
    correct = (rng.random(240) < 0.8).tolist()  # about 190 right, 50 wrong, as on the Algiers set
    figures = level_figures(subject_units(correct, classes), classes)
    low, high = figures["intervals"]["bal_acc"]
    truth = np.arange(240) % 3
    predicted = np.where(correct, truth, (truth + 1) % 3)

    def balanced(t, p):
        return np.mean([np.mean(p[t == c] == c) for c in np.unique(t)])

    reference = stats.bootstrap(
        (truth, predicted), balanced, paired=True, vectorized=False, n_resamples=4000, method="percentile",
        confidence_level=0.95, random_state=1,
    ).confidence_interval  # fmt: skip
    assert low < figures["bal_acc"] < high
    # within Monte Carlo error (2,000 and 4,000 resamples), and closer than a 90 % interval would be (0.008 per end)
    assert low == pytest.approx(reference.low, abs=0.005) and high == pytest.approx(reference.high, abs=0.005)


def test_no_subject_level_balanced_interval_near_saturation():
    classes = ["normal", "als", "myopathy"]
    figures = level_figures(subject_units([True] * 21 + [False], classes), classes)  # 21 of 22 right
    assert all(math.isnan(v) for v in figures["intervals"]["bal_acc"])
    figures = level_figures(subject_units([True] * 30 + [False] * 9, classes), classes)  # 9 wrong: still none
    assert all(math.isnan(v) for v in figures["intervals"]["bal_acc"])


@pytest.mark.slow
def test_the_subject_bootstrap_covers_the_true_accuracy_about_95_percent_of_the_time():
    """Coverage simulation: 300 data sets of 40 subjects whose windows are correlated within a subject (each
    subject's own accuracy drawn around 0.8); the subject-clustered 95 % interval of pooled accuracy should contain
    the true 0.8 in about 95 % of them (binomial SD over 300 draws: 1.3 points). Measured: 93 % (the percentile
    bootstrap undercovers a little with 40 clusters); the same simulation at a 90 % level gives 88 %, which fails."""
    from emg_lightning.metrics.intervals import subject_bootstrap

    rng = np.random.default_rng(11)
    covered = 0
    for _ in range(300):
        subject_accuracy = np.clip(rng.normal(0.8, 0.12, 40), 0, 1)
        windows = rng.integers(10, 40, 40)
        subjects = np.repeat(np.arange(40), windows)
        correct = rng.random(len(subjects)) < subject_accuracy[subjects]
        low, high = subject_bootstrap(subjects, lambda positions, c=correct: c[positions].mean(), resamples=500)
        covered += low <= 0.8 <= high
    assert 0.91 <= covered / 300 <= 0.99
