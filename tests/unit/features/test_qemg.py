"""The quantitative-EMG baseline: features against hand-built potentials, the cache beside the windows, the
closed-form logistic regression and its L2 choice, and emg-train with model=qemg (outputs, checkpoint, refusals)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from emg_lightning.data.cache import WindowTable
from emg_lightning.data.feature_cache import window_features
from emg_lightning.features.qemg import qemg_feature_names, qemg_features
from emg_lightning.models.linear import (
    FeatureLinear,
    balanced_accuracy,
    balanced_log_loss,
    fit_feature_linear,
    fit_logistic_regression,
    standardisation,
)
from emg_lightning.runtime.errors import ConfigError
from emg_lightning.runtime.files import source_version
from emg_lightning.training import train

from conftest import TINY_DATA, compose_train

FS = 10000.0


def biphasic_train(n_potentials: int, amplitude_uv: float, seconds: float = 1.0, fs: float = FS) -> np.ndarray:
    """Silence with ``n_potentials`` evenly spaced biphasic potentials: +A then -A, each phase a 2-ms half sine."""
    x = np.zeros(int(fs * seconds))
    phase = np.sin(np.linspace(0, np.pi, int(2 * fs / 1000) + 1))[1:-1]
    shape = np.concatenate([phase, -phase]) * amplitude_uv
    for k in range(n_potentials):
        start = int((k + 0.5) * len(x) / n_potentials)
        x[start : start + len(shape)] = shape
    return x


def named(features: np.ndarray, name: str) -> np.ndarray:
    return features[:, qemg_feature_names(FS).index(name)]


def test_every_named_feature_is_computed_and_finite_even_for_silence():
    windows = np.stack([biphasic_train(10, 500.0), np.zeros(int(FS)), np.random.default_rng(0).normal(0, 20, int(FS))])
    features = qemg_features(windows, FS)
    assert features.shape == (3, len(qemg_feature_names(FS))) and features.dtype == np.float32
    assert np.isfinite(features).all()
    assert len(set(qemg_feature_names(FS))) == features.shape[1]
    assert len(qemg_feature_names(23437.5)) == qemg_features(np.zeros((1, 23437)), 23437.5).shape[1]


def test_spike_counts_turns_and_muap_shape_match_the_potentials_built():
    features = qemg_features(np.stack([biphasic_train(10, 500.0), biphasic_train(20, 150.0)]), FS)
    # each potential has two phases peaking at +A and -A, 2 ms apart: two peaks of |x| per potential
    np.testing.assert_allclose(named(features, "log_peaks_per_s_above_100uv"), np.log1p([20, 40]), rtol=1e-5)
    np.testing.assert_allclose(named(features, "log_peaks_per_s_above_200uv"), np.log1p([20, 0]), rtol=1e-5)
    # peak to peak amplitude 2A; two phases; a 2-ms half sine is above half its peak for 4/3 ms
    np.testing.assert_allclose(named(features, "log_amplitude_median"), np.log([1000.0, 300.0]), rtol=1e-3)
    np.testing.assert_allclose(named(features, "phases_median"), [2, 2])
    assert np.all(np.abs(named(features, "half_width_ms_median") - 4 / 3) <= 0.15)
    # duration: both phases (4 ms) less the samples below 10 % of the amplitude at each end
    assert np.all((named(features, "duration_ms_median") > 3.5) & (named(features, "duration_ms_median") <= 4.0))
    # Willison turns: each peak and trough from which the signal swings back by the criterion; the first swing runs
    # from the baseline (A), every later one peak to trough (2A). At 200 uV, A = 150 uV: the baseline is not 200 uV
    # from the first peak nor from the last trough, so the zig-zag starts at the first peak and never confirms the
    # last trough: 38 turns, each a 300-uV swing
    np.testing.assert_allclose(named(features, "log_turns_per_s_100uv"), np.log1p([20, 40]), rtol=1e-5)
    np.testing.assert_allclose(named(features, "log_turns_per_s_200uv"), np.log1p([20, 38]), rtol=1e-5)
    np.testing.assert_allclose(named(features, "log_amplitude_per_turn_200uv")[1], np.log(300), rtol=1e-5)
    mean_swing = [(500 + 19 * 1000) / 20, (150 + 39 * 300) / 40]
    np.testing.assert_allclose(named(features, "log_amplitude_per_turn_100uv"), np.log(mean_swing), rtol=1e-5)
    quiet = qemg_features(biphasic_train(20, 80.0)[None], FS)  # 160 uV swings: turns at 100 uV, none at 200 uV
    assert named(quiet, "log_turns_per_s_200uv")[0] == 0 and named(quiet, "log_amplitude_per_turn_200uv")[0] == 0
    np.testing.assert_allclose(named(quiet, "log_turns_per_s_100uv"), np.log1p([38]), rtol=1e-5)  # as above
    assert named(features, "polyphasic_fraction").tolist() == [0.0, 0.0]


@pytest.mark.parametrize("rate", [23437.5, 4687.5])  # N2001's native rate and the one experiment=qemg_loso uses
def test_names_match_the_columns_and_potentials_are_measured_at_the_rates_the_configs_use(rate):
    features = qemg_features(np.stack([biphasic_train(20, 500.0, fs=rate), np.zeros(int(rate))]), rate)
    names = qemg_feature_names(rate)
    assert features.shape == (2, len(names)) and np.isfinite(features).all()
    column = {name: features[0, i] for i, name in enumerate(names)}
    band_tops = [float(name.rsplit("_", 1)[1]) for name in names if name.startswith("welch_log_power_")]
    assert max(band_tops) == pytest.approx(rate / 2, rel=1e-4)  # bands stop at the Nyquist frequency
    # two peaks of |x| per potential (one per phase), both above 200 uV; a 1000-uV swing, two phases
    assert column["log_peaks_per_s_above_200uv"] == pytest.approx(np.log1p(40), rel=1e-4)  # 23437 samples: ~1 s
    assert column["log_amplitude_median"] == pytest.approx(np.log(1000.0), abs=0.05)
    assert column["phases_median"] == 2


def test_features_do_not_depend_on_a_dc_offset():
    x = biphasic_train(10, 500.0) + np.random.default_rng(1).normal(0, 10, int(FS))
    np.testing.assert_allclose(qemg_features(x[None] + 300.0, FS), qemg_features(x[None], FS), rtol=1e-4, atol=1e-4)


def test_window_features_are_computed_once_and_cached_beside_the_windows(tmp_path, monkeypatch):
    from emg_lightning.features import FEATURE_SETS, qemg
    from emg_lightning.features.qemg import QEMG_VERSION

    rng = np.random.default_rng(0)
    windows = (rng.normal(0, 30, (5, 2000)) * 2).astype(np.int16)  # ADC units at 2 per uV
    table = WindowTable(windows, {}, 2.0, 4000.0, {}, tmp_path)
    first = window_features(table, "qemg")
    np.testing.assert_array_equal(first, qemg_features(windows / 2.0, 4000.0))
    stored = f"features-qemg-v{QEMG_VERSION}.npy"
    assert [p.name for p in tmp_path.iterdir()] == [stored]
    # the version is the hash of the feature code itself: a changed definition is never read from the old file
    assert QEMG_VERSION == source_version(Path(qemg.__file__), Path(emg_features_file()))

    def fail(*args):
        raise AssertionError("recomputed although cached")

    monkeypatch.setitem(FEATURE_SETS, "qemg", (QEMG_VERSION, fail, qemg_feature_names))
    np.testing.assert_array_equal(window_features(table, "qemg"), first)
    monkeypatch.setitem(FEATURE_SETS, "qemg", ("changed-code", qemg_features, qemg_feature_names))
    window_features(table, "qemg")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([stored, "features-qemg-vchanged-code.npy"])
    monkeypatch.undo()
    (tmp_path / stored).write_bytes(b"not numpy")  # damaged: recomputed, never trusted
    np.testing.assert_array_equal(window_features(table, "qemg"), first)
    with pytest.raises(ConfigError, match="'wavelets' is unknown"):
        window_features(table, "wavelets")


def test_logistic_regression_reaches_the_penalised_optimum():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4))
    y = (x[:, 0] + 0.5 * rng.normal(size=120) > 0).astype(int) + (x[:, 1] > 1)
    l2 = 0.05
    weight, bias = fit_logistic_regression(x, y, 3, l2)
    # the gradient of the class-balanced objective vanishes at the returned point
    w = torch.tensor(weight, requires_grad=True)
    b = torch.tensor(bias, requires_grad=True)
    counts = np.bincount(y, minlength=3)
    class_weight = torch.tensor(len(y) / (3 * counts), dtype=torch.float64)
    yt = torch.from_numpy(y)
    loss = torch.nn.functional.cross_entropy(torch.from_numpy(x) @ w.T + b, yt, weight=class_weight, reduction="sum")
    (loss / class_weight[yt].sum() + 0.5 * l2 * w.pow(2).sum()).backward()
    assert w.grad.abs().max() < 1e-5 and b.grad.abs().max() < 1e-5
    with pytest.raises(ValueError, match="l2 must be > 0"):
        fit_logistic_regression(x, y, 3, 0.0)


def test_standardisation_balanced_accuracy_and_balanced_log_loss_by_hand():
    mean, scale = standardisation(np.array([[1.0, 5.0], [3.0, 5.0]]))
    assert mean.tolist() == [2.0, 5.0] and scale.tolist() == [1.0, 1.0]  # constant column: scale 1, not 0
    # class 0: 2 of 2 right, class 1: 1 of 4 right -> (1 + 0.25) / 2
    assert balanced_accuracy(np.array([0, 0, 1, 1, 1, 1]), np.array([0, 0, 1, 0, 0, 0])) == pytest.approx(0.625)
    # class 0's row: p = 1/2 (loss ln 2); class 1's two rows: p = 1/2 and e^2 / (1 + e^2); each class weighs half
    logits = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
    by_hand = 0.5 * np.log(2) + 0.5 * (np.log(2) + np.log1p(np.exp(-2.0))) / 2
    assert balanced_log_loss(np.array([0, 1, 1]), logits) == pytest.approx(by_hand, abs=1e-12)
    assert balanced_log_loss(np.array([0]), np.array([[1000.0, 0.0]])) == pytest.approx(0.0)  # no overflow


def inner_scores_by_hand(x, y, draws, l2):
    """Mean held-out balanced log-loss and balanced accuracy of one strength over every draw's folds."""
    losses, accuracies = [], []
    for folds in draws:
        for held in np.unique(folds):
            fit, score = folds != held, folds == held
            mean, scale = standardisation(x[fit])
            weight, bias = fit_logistic_regression((x[fit] - mean) / scale, y[fit], 2, l2)
            logits = ((x[score] - mean) / scale) @ weight.T + bias
            losses.append(balanced_log_loss(y[score], logits))
            accuracies.append(balanced_accuracy(y[score], logits.argmax(1)))
    return np.mean(losses), np.mean(accuracies)


@pytest.mark.parametrize("inner_score", ["log_loss", "bal_acc"])
def test_l2_is_chosen_by_repeated_inner_folds_then_refitted_on_every_row(inner_score):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 3))
    y = (x[:, 0] + 0.3 * rng.normal(size=240) > 0).astype(int)
    draws = np.stack([np.repeat([0, 1, 2], 80), np.tile(np.repeat([0, 1], 40), 3)])  # two draws of the folds
    net = FeatureLinear(num_classes=2, in_features=3)
    grid = [1e-3, 1e-2, 1e3]
    choice = fit_feature_linear(net, x, y, draws, grid, inner_score)
    for l2 in grid:
        loss, accuracy = inner_scores_by_hand(x, y, draws, l2)
        assert choice["inner_log_loss_by_l2"][f"{l2:g}"] == pytest.approx(loss, abs=1e-6)  # warm-started fits
        assert choice["inner_bal_acc_by_l2"][f"{l2:g}"] == pytest.approx(accuracy, abs=1e-9)
    by_l2 = choice[f"inner_{inner_score}_by_l2"]
    best = (min if inner_score == "log_loss" else max)(by_l2.values())
    assert choice["l2"] == max(float(k) for k, v in by_l2.items() if v == best)  # ties go to the stronger penalty
    assert choice[f"inner_{inner_score}"] == best and choice["inner_score"] == inner_score
    # the absurd penalty (1e3) predicts near-constant probabilities: far the worst loss, so never chosen by it
    assert inner_score == "bal_acc" or choice["l2"] < 1e3
    np.testing.assert_allclose(net.mean.numpy(), x.mean(axis=0), rtol=1e-6)  # standardised on every row
    weight, bias = fit_logistic_regression((x - x.mean(0)) / x.std(0), y, 2, choice["l2"])
    np.testing.assert_allclose(net.linear.weight.detach().numpy(), weight, rtol=1e-5, atol=1e-6)
    # one draw given as a plain vector is the same as a (1, rows) array of draws
    one = fit_feature_linear(FeatureLinear(num_classes=2, in_features=3), x, y, draws[0], grid, inner_score)
    assert one == fit_feature_linear(FeatureLinear(num_classes=2, in_features=3), x, y, draws[:1], grid, inner_score)


def test_inner_cross_validation_refuses_what_cannot_choose_a_strength():
    x, y = np.zeros((240, 3)), np.repeat([0, 1], 120)
    net, folds, grid = FeatureLinear(num_classes=2, in_features=3), np.repeat([0, 1, 2], 80), [0.1]
    with pytest.raises(ValueError, match="l2_grid"):
        fit_feature_linear(net, x, y, folds, [])
    with pytest.raises(ValueError, match="at least two inner folds"):
        fit_feature_linear(net, x, y, np.zeros(240), grid)
    with pytest.raises(ValueError, match="at least two inner folds"):  # the second draw puts everyone in one fold
        fit_feature_linear(net, x, y, np.stack([folds, np.zeros(240)]), grid)
    with pytest.raises(ValueError, match="model.inner_score='accuracy' is unknown"):
        fit_feature_linear(net, x, y, folds, grid, "accuracy")
    with pytest.raises(ValueError, match="expects \\(batch, 3\\) feature vectors"):
        net(torch.zeros(2, 1, 100))


def run_train(overrides, tmp_path):
    try:
        return train(compose_train([*TINY_DATA, "print_config=false", *overrides], tmp_path))
    finally:
        GlobalHydra.instance().clear()


def test_emg_train_with_the_qemg_model_writes_the_outputs_of_a_network_run(tmp_path, capsys):
    from emg_lightning.classifier import EMGClassifier

    metrics = run_train(["model=qemg"], tmp_path)
    # 5 subjects in 5 inner folds: every draw is the same partition, so inner_repeats=3 draws once
    assert "chosen by a 5-fold inner cross-validation over the 5 training + validation subjects" in (
        capsys.readouterr().out
    )
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["epochs"] == 0 and on_disk["l2"] in (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)
    assert on_disk["best_val_bal_acc"] == on_disk["inner_bal_acc"] and 0 <= metrics["test/acc"] <= 1
    assert on_disk["best_val_score"] == {"monitor": "inner cross-validation loss", "value": on_disk["inner_log_loss"]}
    rows = (tmp_path / "predictions.csv").read_text().splitlines()
    assert len(rows) - 1 == on_disk["test_windows"] > 0
    model = EMGClassifier.load_from_checkpoint(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu")
    assert isinstance(model.net, FeatureLinear) and float(model.net.scale.min()) > 0
    # a rerun is skipped, and a run whose test was lost is tested from the stored model without refitting
    (tmp_path / "metrics.json").unlink()
    again = run_train(["model=qemg"], tmp_path)
    assert "training had finished" in capsys.readouterr().out and again["test/acc"] == metrics["test/acc"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=qemg", "data.features=null"], "net.name=feature_linear reads feature vectors: set data.features"),
        (["data.features=qemg"], "model.net.name=resemgnet reads raw windows, but data.features=qemg"),
        (["model=qemg", "data.normalization=zscore"], "set data.normalization=none"),
        (["model=qemg", "label_smoothing=fixed"], "fitted in closed form: use label_smoothing=none"),
        (["model=qemg", "model.l2_grid=[0.1,-1]"], "model.l2_grid=[0.1, -1] must be a non-empty list"),
        (["model=qemg", "model.inner_repeats=0"], "model.inner_repeats=0 must be a whole number, 1 or more"),
        (["model=qemg", "model.inner_folds=1"], "model.inner_folds=1 must be a whole number, 2 or more"),
        (["model=qemg", "model.inner_score=auc"], "model.inner_score='auc' is unknown; use one of log_loss, bal_acc"),
        (["+model.inner_repeats=3"], "model.inner_repeats chooses the penalty of a model fitted in closed form"),
        (["model=qemg", "data.features=wavelets"], "'wavelets' is unknown"),
    ],
)
def test_settings_the_qemg_model_cannot_use_are_refused(overrides, message, tmp_path):
    with pytest.raises(ConfigError, match=message.replace("(", "\\(").replace("[", "\\[")):
        run_train(overrides, tmp_path)


def test_a_row_of_weight_one_third_counts_as_a_third_of_a_row():
    # subject weighting's meaning, derived without the weights: three identical copies of a row, each weighing
    # 1/3, fit exactly as the row once; unweighted they pull the fit towards that row
    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 2))
    y = (x[:, 0] + rng.normal(size=30) > 0).astype(int)
    tripled_x, tripled_y = np.vstack([x, x[:5], x[:5]]), np.concatenate([y, y[:5], y[:5]])
    weights = np.concatenate([np.full(5, 1 / 3), np.ones(25), np.full(10, 1 / 3)])
    once = fit_logistic_regression(x, y, 2, 0.1)
    weighted = fit_logistic_regression(tripled_x, tripled_y, 2, 0.1, sample_weight=weights)
    unweighted = fit_logistic_regression(tripled_x, tripled_y, 2, 0.1)
    assert np.allclose(weighted[0], once[0], atol=1e-6) and np.allclose(weighted[1], once[1], atol=1e-6)
    assert not np.allclose(unweighted[0], once[0], atol=1e-3)


def test_weighted_scores_by_hand():
    # class 1's rows weigh 3 and 1: recall (3 * 1 + 1 * 0) / 4 = 0.75; class 0's one row right: (1 + 0.75) / 2
    y, predicted = np.array([0, 1, 1]), np.array([0, 1, 0])
    assert balanced_accuracy(y, predicted, np.array([1.0, 3.0, 1.0])) == pytest.approx(0.875)
    logits = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
    by_hand = 0.5 * np.log(2) + 0.5 * (3 * np.log(2) + np.log1p(np.exp(-2.0))) / 4
    assert balanced_log_loss(y, logits, np.array([1.0, 3.0, 1.0])) == pytest.approx(by_hand, abs=1e-12)


def emg_features_file() -> str:
    from emg_lightning.features import basic

    return basic.__file__


def _column(features: np.ndarray, name: str, rate: float = 4687.5) -> float:
    return float(features[0, qemg_feature_names(rate).index(name)])


def test_spectral_and_amplitude_features_of_a_sine_match_its_formulae():
    rate, amplitude = 4687.5, 200.0
    t = np.arange(int(rate)) / rate
    features = qemg_features((amplitude * np.sin(2 * np.pi * 300.0 * t))[None], rate)
    # amplitude statistics of A sin: RMS A / sqrt 2, mean |x| 2A / pi, peak A; |sin| has the quantile
    # function sin(pi q / 2), so the median of |x| is A sin(pi / 4) and its 90th percentile A sin(0.45 pi)
    assert _column(features, "log_rms") == pytest.approx(np.log(amplitude / np.sqrt(2)), abs=0.01)
    assert _column(features, "log_mav") == pytest.approx(np.log(2 * amplitude / np.pi), abs=0.01)
    assert _column(features, "log_peak") == pytest.approx(np.log(amplitude), abs=0.01)
    assert _column(features, "log_abs_percentile_50") == pytest.approx(np.log(amplitude * np.sin(np.pi / 4)), abs=0.01)
    assert _column(features, "log_abs_percentile_90") == pytest.approx(
        np.log(amplitude * np.sin(0.45 * np.pi)), abs=0.01
    )
    # all the power at 300 Hz: every spectral edge inside the Hann window's main lobe around it (+-2 Welch bins of
    # 4687.5 / 128 = 37 Hz, so the lobe reaches into 350-500 Hz); 200-350 Hz the strongest band and every band
    # outside the lobe at least 1,000 x weaker; a spectrum as far from flat as one gets
    for edge in ("log_edge_frequency_50", "log_edge_frequency_80", "log_edge_frequency_95"):
        assert abs(np.exp(_column(features, edge)) - 300.0) < 2 * 4687.5 / 128, edge
    bands = [n for n in qemg_feature_names(rate) if n.startswith("welch_log_power_")]
    lobe = ("welch_log_power_200_350", "welch_log_power_350_500")
    peak_band = _column(features, lobe[0])
    assert peak_band > _column(features, lobe[1])
    assert all(peak_band > _column(features, b) + np.log(1000) for b in bands if b not in lobe)
    assert _column(features, "spectral_flatness") < 0.05


def test_white_noise_has_a_flat_spectrum_and_its_own_noise_level():
    rate, sigma = 4687.5, 50.0
    noise = np.random.default_rng(0).normal(0, sigma, (1, int(rate)))
    features = qemg_features(noise, rate)
    # Welch's average over ~70 segments: every bin near the same power -> flatness and normalised entropy near 1,
    # log-log slope near 0; the robust noise level median(|x|) / 0.6745 estimates sigma
    assert _column(features, "spectral_flatness") > 0.9
    assert _column(features, "spectral_entropy") > 0.97
    assert abs(_column(features, "spectral_slope")) < 0.2
    assert np.exp(_column(features, "log_noise_sigma")) == pytest.approx(sigma, rel=0.05)


def test_the_high_passed_percentiles_see_no_slow_wave():
    rate = 4687.5
    t = np.arange(int(rate)) / rate
    features = qemg_features((500.0 * np.sin(2 * np.pi * 20.0 * t))[None], rate)
    # a 20-Hz wave of 500 uV: the raw 99th percentile of |x| is 500 sin(0.495 pi); above 1 kHz nothing is left
    assert _column(features, "log_abs_percentile_99") == pytest.approx(np.log(500 * np.sin(0.495 * np.pi)), abs=0.01)
    assert np.exp(_column(features, "log_high_passed_abs_percentile_99")) < 1.0
