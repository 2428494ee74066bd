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
    # (and of the MUAP measures it counts phases with)
    from emg_lightning.muap import measures

    assert QEMG_VERSION == source_version(Path(qemg.__file__), Path(emg_features_file()), Path(measures.__file__))

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
    for q in (50, 75, 90, 95, 99, 99.9):
        expected = np.log(amplitude * np.sin(np.pi * q / 200))
        assert _column(features, f"log_abs_percentile_{q:g}") == pytest.approx(expected, abs=0.01), q
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


# -- motor-unit potentials of known shape (found by mutation testing) --------------------------------------------------


def triangle_potential() -> np.ndarray:
    """A triphasic potential at 10 kHz (0.1 ms per sample), piecewise linear through 0, +100, -200, +100, 0 uV at
    samples 0, 5, 15, 25, 30: steps of 20 uV and 30 uV per sample."""
    return np.interp(np.arange(31), [0, 5, 15, 25, 30], [0.0, 100.0, -200.0, 100.0, 0.0])


def test_the_shape_of_a_potential_by_hand():
    from emg_lightning.features.qemg import SHAPE_MEASURES, _potential_shapes

    x = np.zeros(400)
    x[100:131] = triangle_potential()
    (shape,) = _potential_shapes(x, np.array([115]), 1.0, FS)  # centred on the -200 uV peak
    got = dict(zip(SHAPE_MEASURES, shape))
    assert got["log_amplitude"] == pytest.approx(np.log(300.0))
    # at most -100 uV (half the peak): samples 12..18 of the potential (100 - 30 (i - 5) <= -100 from i = 11.67;
    # -200 + 30 (i - 15) <= -100 up to i = 18.33): 7 samples
    assert got["half_width_ms"] == pytest.approx(0.7)
    # |x| >= 30 uV (10 % of the amplitude, above 3 sigma): from sample 2 (40 uV) to 28 (40 uV): 27 samples
    assert got["duration_ms"] == pytest.approx(2.7)
    assert got["phases"] == 3  # +, -, + : two baseline crossings inside
    assert got["turns"] == 2  # +100 -> -200 -> +100, each swing 300 uV
    inside = np.abs(triangle_potential()[2:29]).sum() * 0.1  # uV ms over the potential's span
    assert got["thickness_ms"] == pytest.approx(inside / 300.0)
    assert got["rise_ms"] == pytest.approx(1.0)  # from the +100 uV peak (sample 5) to the trough (15)


def test_potentials_clipped_at_the_window_edge_and_a_noise_floor_above_a_tenth():
    from emg_lightning.features.qemg import SHAPE_MEASURES, _potential_shapes

    x = np.zeros(200)
    x[:26] = triangle_potential()[5:]  # the window opens on the +100 uV peak; the trough is sample 10
    # what lies before the window counts as baseline (0), not as the first sample repeated; a noise level of 14 uV
    # (3 sigma = 42 > 30) sets the duration to |x| >= 42 uV: from sample 0 (100 uV) to 22 (60 uV): 23 samples
    (shape,) = _potential_shapes(x, np.array([10]), 14.0, FS)
    got = dict(zip(SHAPE_MEASURES, shape))
    assert got["duration_ms"] == pytest.approx(2.3) and got["half_width_ms"] == pytest.approx(0.7)
    assert got["log_amplitude"] == pytest.approx(np.log(300.0)) and got["phases"] == 3
    x = np.zeros(200)
    x[-26:] = triangle_potential()[:26]  # the window closes on the last +100 uV peak; the trough is 15 from its start
    (shape,) = _potential_shapes(x, np.array([200 - 26 + 15]), 14.0, FS)
    got = dict(zip(SHAPE_MEASURES, shape))
    # from sample 3 (60 uV) of the potential to its last (100 uV): 23 samples; nothing after the window is counted
    assert got["duration_ms"] == pytest.approx(2.3) and got["log_amplitude"] == pytest.approx(np.log(300.0))


def test_a_potential_that_touches_zero_between_its_phases_crosses_the_baseline_once():
    from emg_lightning.features.qemg import SHAPE_MEASURES, _potential_shapes

    x = np.zeros(300)
    x[100:121] = np.interp(np.arange(21), [0, 5, 15, 20], [0.0, 100.0, -100.0, 0.0])  # exactly 0 at sample 10
    (shape,) = _potential_shapes(x, np.array([105]), 1.0, FS)
    assert dict(zip(SHAPE_MEASURES, shape))["phases"] == 2


def test_input_checks_and_each_window_its_own_baseline():
    assert qemg_features(np.zeros((1, 64)), FS).shape[0] == 1
    with pytest.raises(ValueError, match=r"qemg_features needs \(windows, samples >= 64\), got shape \(1, 63\)"):
        qemg_features(np.zeros((1, 63)), FS)
    with pytest.raises(ValueError, match=r"got shape \(100,\)"):
        qemg_features(np.zeros(100), FS)
    w = biphasic_train(5, 300.0)
    apart = qemg_features(np.stack([w + 300.0, w - 500.0]), FS)
    np.testing.assert_allclose(apart, qemg_features(np.stack([w, w]), FS), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("rate", [10000.0, 2343.75])
def test_the_high_passed_percentiles_are_of_a_zero_phase_order_4_butterworth(rate):
    from scipy import signal as sps

    # above 1 kHz, or above 0.4 x the rate where 1 kHz is too close to Nyquist
    x = np.random.default_rng(3).normal(0, 40, (1, int(rate)))
    x -= x.mean()
    cutoff = min(1000.0, 0.4 * rate)
    high = np.abs(sps.sosfiltfilt(sps.butter(4, cutoff, "highpass", fs=rate, output="sos"), x[0]))
    features = qemg_features(x, rate)
    names = qemg_feature_names(rate)
    for q in (50, 75, 90, 95, 99, 99.9):
        expected = np.log(np.percentile(high, q) + 1e-3)
        assert features[0, names.index(f"log_high_passed_abs_percentile_{q}")] == pytest.approx(expected, rel=1e-5)


def test_peak_counts_keep_peaks_at_least_a_millisecond_apart():
    t = np.arange(int(FS)) / FS
    features = qemg_features((300.0 * np.sin(2 * np.pi * 3000.0 * t))[None], FS)
    # |x| peaks 6,000 times a second; one per millisecond at most is counted
    assert 900 <= np.expm1(named(features, "log_peaks_per_s_above_50uv")[0]) <= 1000


def test_potential_counts_and_fractions_of_a_train_of_known_potentials():
    window = np.zeros(int(FS))  # 1 s
    starts = np.arange(10) * 900 + 200
    for start in starts:
        window[start : start + 31] = 1.5 * triangle_potential()  # +150, -300, +150 uV
    features = qemg_features(window[None], FS)
    # ten potentials: peaks of |x| above 100 uV (the +150, -300, +150 uV extremes, 1 ms apart) 30, above 200 uV
    # 10, above 500 uV none; the potentials (peaks above max(4 sigma, 30 uV), 2 ms apart): 10 per second
    assert np.expm1(named(features, "log_peaks_per_s_above_100uv")[0]) == pytest.approx(30, abs=0.01)
    assert np.expm1(named(features, "log_peaks_per_s_above_200uv")[0]) == pytest.approx(10, abs=0.01)
    assert np.expm1(named(features, "log_peaks_per_s_above_500uv")[0]) == pytest.approx(0, abs=0.01)
    assert np.expm1(named(features, "log_potentials_per_s")[0]) == pytest.approx(10, abs=0.01)
    # all ten alike: median = 90th percentile = the hand values above (|x| >= 45 uV from sample 2 to 28); three
    # phases: not polyphasic; 2.7 ms: short
    for stat in ("median", "p90"):
        assert named(features, f"duration_ms_{stat}")[0] == pytest.approx(2.7, abs=1e-5)
        assert named(features, f"phases_{stat}")[0] == 3 and named(features, f"turns_{stat}")[0] == 2
    # and the shape of each (1.5 x the triangle of test_the_shape_of_a_potential_by_hand: the same times, 1.5 x the
    # amplitude; the thickness from the window less its mean, as every feature is)
    mean = window.mean()
    thickness = np.abs(1.5 * triangle_potential()[2:29] - mean).sum() * 0.1 / 450.0
    for stat in ("median", "p90"):
        assert np.exp(named(features, f"log_amplitude_{stat}")[0]) == pytest.approx(450.0, rel=1e-6)
        assert named(features, f"half_width_ms_{stat}")[0] == pytest.approx(0.7, abs=1e-5)
        assert named(features, f"thickness_ms_{stat}")[0] == pytest.approx(thickness, rel=1e-5)
        assert named(features, f"rise_ms_{stat}")[0] == pytest.approx(1.0, abs=1e-5)
    assert named(features, "polyphasic_fraction")[0] == 0.0 and named(features, "short_fraction")[0] == 1.0
    louder = np.zeros(int(FS))
    for start in starts:
        louder[start : start + 31] = 6.0 * triangle_potential()  # +600, -1200, +600 uV: above 1000 uV once, 2000 never
    louder = qemg_features(louder[None], FS)
    assert np.expm1(named(louder, "log_peaks_per_s_above_1000uv")[0]) == pytest.approx(10, abs=0.01)
    assert np.expm1(named(louder, "log_peaks_per_s_above_2000uv")[0]) == pytest.approx(0, abs=0.01)
    # the steepest slope: 45 uV per 0.1 ms = 450 uV/ms
    assert np.exp(named(features, "log_max_slope_uv_per_ms")[0]) == pytest.approx(450.0, rel=1e-5)


def polyphasic_potential() -> np.ndarray:
    """Five phases at 10 kHz: 0, +100, -100, +100, -100, +100, 0 uV at samples 0, 5, ..., 25 and 35: |x| >= 20 uV
    (10 % of its 200 uV) from sample 1 (20 uV) to 33 (20 uV): 3.3 ms."""
    return np.interp(np.arange(36), [0, 5, 10, 15, 20, 25, 35], [0.0, 100, -100, 100, -100, 100, 0])


def test_a_mix_of_potentials_gives_each_its_own_shape_and_the_fractions_by_count():
    from emg_lightning.features.qemg import SHAPE_MEASURES, _potential_shapes

    x = np.zeros(2000)
    x[100:131] = triangle_potential()
    x[1000:1036] = polyphasic_potential()
    shapes = _potential_shapes(x, np.array([115, 1005]), 1.0, FS)
    triphasic, polyphasic = (dict(zip(SHAPE_MEASURES, row)) for row in shapes)
    assert triphasic["log_amplitude"] == pytest.approx(np.log(300.0))
    assert polyphasic["log_amplitude"] == pytest.approx(np.log(200.0))
    assert (polyphasic["phases"], polyphasic["turns"]) == (5, 4)
    assert polyphasic["duration_ms"] == pytest.approx(3.3)
    assert polyphasic["thickness_ms"] == pytest.approx(np.abs(polyphasic_potential()[1:34]).sum() * 0.1 / 200.0)
    window = np.zeros(int(FS))
    for k in range(10):  # five of each, 100 ms apart
        start = 200 + 900 * k
        potential = triangle_potential() if k % 2 else polyphasic_potential()
        window[start : start + len(potential)] = 1.5 * potential
    features = qemg_features(window[None], FS)
    # five of ten polyphasic (>= 5 phases: not the 4 turns), five of ten short (2.7 ms; 3.3 ms is not)
    assert named(features, "polyphasic_fraction")[0] == 0.5 and named(features, "short_fraction")[0] == 0.5


def test_silence_has_no_potentials_and_the_floor_of_every_log():
    features = qemg_features(np.zeros((1, int(FS))), FS)
    for name in ("polyphasic_fraction", "short_fraction", "duration_ms_median", "log_potentials_per_s"):
        assert named(features, name)[0] == 0.0, name
    for name in ("log_abs_percentile_50", "log_high_passed_abs_percentile_99", "log_max_slope_uv_per_ms"):
        assert named(features, name)[0] == pytest.approx(np.log(1e-3)), name


def test_rates_are_per_second_and_noise_relative_thresholds_scale_with_the_noise():
    seconds = 2.0
    t = np.arange(int(seconds * FS)) / FS
    # a 20-uV hum whose samples sweep its phase: the median of |x| is 20 sin(pi / 4), sigma = that / 0.6745 = 21 uV
    # (the potentials' 3 % of samples raise the median a little)
    window = 20.0 * np.sin(2 * np.pi * 1234.5 * t)
    for start in np.arange(20) * 900 + 200:  # 20 potentials in 2 s: +300, -600, +300 uV
        window[start : start + 31] += 3.0 * triangle_potential()
    features = qemg_features(window[None], FS)
    sigma = 20 * np.sin(np.pi / 4) / 0.6745
    assert np.exp(named(features, "log_noise_sigma")[0]) == pytest.approx(sigma, rel=0.05)
    # from 3 sigma = 63 uV to 12 sigma = 252 uV: the three lobes of each potential, none of the hum's peaks
    for k in (3, 5, 8, 12):
        assert np.expm1(named(features, f"log_peaks_per_s_above_{k}sigma")[0]) == pytest.approx(30.0, abs=0.01)
    assert np.expm1(named(features, "log_potentials_per_s")[0]) == pytest.approx(10.0, abs=0.01)
    turns = np.expm1(named(features, "log_turns_per_s_200uv")[0])
    # per second: Willison turns at 200 uV: each potential's +300, -600 and +300 uV extremes, and the baseline
    # between potentials (the next potential rises 300 uV from it): 4 per potential, the last baseline not
    # followed by a rise: 79 in 2 s
    assert turns == pytest.approx(39.5, abs=0.01)


def test_only_the_sixty_four_largest_potentials_are_measured_but_every_one_is_counted():
    window = np.zeros(int(FS))
    for k in range(100):  # 30 large (+-450 uV) and 70 small (+-150 uV) triphasic potentials, 10 ms apart
        window[50 + 98 * k : 81 + 98 * k] = (1.5 if k % 10 < 3 else 0.5) * triangle_potential()
    features = qemg_features(window[None], FS)
    assert np.expm1(named(features, "log_potentials_per_s")[0]) == pytest.approx(100.0, abs=0.01)
    # the 64 largest: 30 large and 34 small, so the median amplitude is a small one's (150 uV), the 90th a large one's
    assert np.exp(named(features, "log_amplitude_median")[0]) == pytest.approx(150.0, rel=0.02)
    assert np.exp(named(features, "log_amplitude_p90")[0]) == pytest.approx(450.0, rel=0.02)


@pytest.mark.parametrize(
    "rate, segment",
    [(10000.0, 128), (4687.5, 64), (23437.5, 512), (12800.0, 256), (12801.28, 256), (40960.0, 1024)],
)  # 12,800 Hz: 50-Hz bins fall on the 100, 200 and 350 Hz edges; 12,801.28 Hz: a bin at 5,000.5 Hz, just beyond the
# slope's 5 kHz; 40,960 Hz: rate / 40 is a power of 2
def test_welch_features_by_their_definitions(rate, segment):
    from scipy import signal as sps

    rng = np.random.default_rng(1)
    n = int(rate)
    windows = np.stack([rng.normal(0, 30, n), np.cumsum(rng.normal(0, 5, n))])  # white and brown-ish noise
    windows -= windows.mean(axis=1, keepdims=True)
    names = qemg_feature_names(rate)
    features = qemg_features(windows, rate)
    # the periodogram: 2^floor(log2(rate / 40)) samples a segment (the largest power of 2 giving >= 40-Hz bins)
    f, p = sps.welch(windows, fs=rate, nperseg=segment)
    edges = [e for e in (20, 50, 100, 200, 350, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500, 10000) if e < rate / 2]
    edges.append(rate / 2)
    bands = [n for n in names if n.startswith("welch_log_power_")]
    assert bands == [f"welch_log_power_{lo:g}_{hi:g}" for lo, hi in zip(edges[:-1], edges[1:])]
    for name, lo, hi in zip(bands, edges[:-1], edges[1:]):
        expected = np.log(p[:, (f >= lo) & (f < hi)].sum(axis=1) + 1e-9)
        np.testing.assert_allclose(features[:, names.index(name)], expected, rtol=1e-4, atol=1e-4)
    kept, q = f >= 20, p[:, f >= 20] + 1e-9
    share = q / q.sum(axis=1, keepdims=True)
    for level in (50, 80, 95):  # the first frequency by which the share reaches the level
        first = np.array([f[kept][np.argmax(np.cumsum(s) >= level / 100)] for s in share])
        np.testing.assert_allclose(features[:, names.index(f"log_edge_frequency_{level}")], np.log(first), rtol=1e-5)
    flatness = np.exp(np.log(q).mean(axis=1)) / q.mean(axis=1)
    entropy = -(share * np.log(share)).sum(axis=1) / np.log(share.shape[1])
    np.testing.assert_allclose(features[:, names.index("spectral_flatness")], flatness, rtol=1e-4)
    np.testing.assert_allclose(features[:, names.index("spectral_entropy")], entropy, rtol=1e-4)
    fit = (f[kept] >= 100) & (f[kept] <= min(5000, rate / 2))
    slopes = [np.polyfit(np.log(f[kept][fit]), np.log(row[fit]), 1)[0] for row in q]  # least squares, log-log
    np.testing.assert_allclose(features[:, names.index("spectral_slope")], slopes, rtol=1e-4, atol=1e-5)


def test_run_lengths_from_a_column_either_way():
    from emg_lightning.features.qemg import _run_length

    mask = np.array([[True, True, True, False, True], [False, True, True, True, True]])
    assert _run_length(mask, 1, 1).tolist() == [2, 4]  # columns 1, 2 | 1, 2, 3, 4 (to the end)
    assert _run_length(mask, 1, -1).tolist() == [2, 1]  # columns 1, 0 | 1
    assert _run_length(mask, 4, -1).tolist() == [1, 4]


@pytest.mark.parametrize(
    "x, rates, amplitudes",
    [
        # falling first: extremes 60, 0, 60, 0, 60: three 60-uV turns at 50 uV, none at 100 or 200
        ([30, 60, 0, 60, 0, 60, 30], [3, 0, 0], [60, 0, 0]),
        # rising first: 0, 60, 0, 60: two turns
        ([30, 0, 60, 0, 60, 30], [2, 0, 0], [60, 0, 0]),
        # swings of exactly 50 uV are turns at 50 uV
        ([30, 0, 50, 0, 50, 30], [2, 0, 0], [50, 0, 0]),
    ],
)
def test_willison_turns_and_amplitudes_by_hand(x, rates, amplitudes):
    from emg_lightning.features.qemg import _turns_amplitude

    seconds = 2.0  # rates are per second
    got = _turns_amplitude(np.array(x, dtype=float), seconds)
    np.testing.assert_allclose(got[:3], np.log1p(np.array(rates) / seconds))
    np.testing.assert_allclose(got[3:], [np.log(a) if a else 0.0 for a in amplitudes])
