"""qEMG features at the edges of their definitions: each case sits where an off-by-one, a changed constant or a
strict-for-inclusive comparison would change a feature, and each expected value is worked out by hand from the
definitions in emg_lightning/features/qemg.py (its docstring and comments)."""

from __future__ import annotations

import numpy as np
import pytest

from emg_lightning.features.qemg import (
    SHAPE_MEASURES,
    _potential_shapes,
    _spike_features,
    _turns,
    _turns_amplitude,
    qemg_feature_names,
    qemg_features,
)


def shapes(x, peaks, sigma: float, rate: float) -> list[dict]:
    rows = _potential_shapes(np.asarray(x, dtype=float), np.array(peaks), sigma, rate)
    return [dict(zip(SHAPE_MEASURES, row)) for row in rows]


def spikes(x, rate: float) -> dict:
    """The per-window features after the spectral ones, by name (the high-passed signal is not under test: zeros)."""
    names = qemg_feature_names(rate)
    x = np.asarray(x, dtype=float)
    return dict(zip(names[names.index("log_noise_sigma") :], _spike_features(x, np.zeros_like(x), rate)))


def spikes_at(rate: float, seconds: float, samples: dict[int, float], background: np.ndarray | None = None) -> dict:
    x = np.zeros(int(rate * seconds)) if background is None else background.copy()
    for i, value in samples.items():
        x[i] = value
    return spikes(x, rate)


@pytest.mark.parametrize(
    "rate, half",
    [
        (300.0, 2),  # 6 ms = 1.8 samples -> 2 (not the floor of 2 samples: a floor of 3 would show)
        (3417.0, 21),  # 6 ms = 20.502 samples -> 21
        (10000.0, 60),
    ],
)
def test_a_potential_is_seen_over_six_milliseconds_either_side_of_its_peak(rate, half):
    # a slow bump (a Gaussian of 100 ms sd) stays within 0.2 % of its peak over +-6 ms: every sample of the segment
    # is above a tenth of the segment's (tiny) amplitude, so the duration is the whole segment, 2 x half + 1 samples
    n = 4 * half + 41
    t = (np.arange(n) - n // 2) / rate
    (got,) = shapes(1000.0 * np.exp(-0.5 * (t / 0.1) ** 2), [n // 2], 1e-9, rate)
    assert got["duration_ms"] == pytest.approx((2 * half + 1) * 1000.0 / rate)


def test_the_rise_time_is_from_the_peak_to_the_deepest_trough_within_two_milliseconds():
    rate = 10260.0  # 2 ms = 20.52 samples -> 21
    x = np.zeros(600)
    x[200], x[210], x[221], x[225] = 500.0, -100.0, -300.0, -400.0  # the -400 uV trough is 25 samples on: beyond
    x[400], x[395], x[370] = 600.0, -350.0, -500.0  # a second potential: its -500 uV trough 30 samples before
    first, second = shapes(x, [200, 400], 1e-9, rate)
    assert first["rise_ms"] == pytest.approx(21 * 1000.0 / rate)  # to the -300 uV trough, 21 samples on
    assert second["rise_ms"] == pytest.approx(5 * 1000.0 / rate)  # each potential its own peak and trough
    # at 300 Hz, 2 ms is 0.6 samples: the floor of one sample either side
    x = np.zeros(30)
    x[15], x[16], x[17] = 500.0, -100.0, -300.0
    (low_rate,) = shapes(x, [15], 1e-9, 300.0)
    assert low_rate["rise_ms"] == pytest.approx(1000.0 / 300.0)


def test_the_segment_reads_the_window_to_its_first_and_last_sample_and_zeros_beyond():
    x = np.zeros(40)
    x[0], x[2] = -400.0, 500.0  # the trough is the window's first sample
    (got,) = shapes(x, [2], 1e-9, 1000.0)
    assert got["log_amplitude"] == pytest.approx(np.log(900.0))
    x = np.zeros(40)
    x[39], x[37] = -400.0, 500.0  # ... and its last
    (got,) = shapes(x, [37], 1e-9, 1000.0)
    assert got["log_amplitude"] == pytest.approx(np.log(900.0))
    # a positive potential filling an 8-sample window: +-6 samples around sample 3 reach 3 samples before the window
    # and 2 after, which count as baseline (0 uV): amplitude 500 - 0
    (got,) = shapes([100.0, 200, 300, 500, 300, 200, 100, 50], [3], 1e-9, 1000.0)
    assert got["log_amplitude"] == pytest.approx(np.log(500.0), rel=1e-9)


def test_the_half_width_counts_samples_at_exactly_half_the_peak_on_each_side():
    x = np.zeros(30)
    x[11:15] = [50.0, 60.0, 100.0, 50.0]  # at least 50 uV: two samples left of the peak, one right: 4 samples
    (got,) = shapes(x, [13], 1e-9, 1000.0)
    assert got["half_width_ms"] == pytest.approx(4.0)


def test_the_duration_level_is_three_noise_sigmas_where_that_is_above_a_tenth_of_the_amplitude():
    x = np.zeros(30)
    x[11:16] = [35.0, 100.0, 200.0, 100.0, 35.0]  # amplitude 200: a tenth is 20 uV; 3 sigma = 30 uV sets the level
    (got,) = shapes(x, [13], 10.0, 1000.0)
    assert got["duration_ms"] == pytest.approx(5.0)  # the 35-uV samples are in


@pytest.mark.parametrize(
    "segment, turns",
    [
        ([0.0, 30, 5, 10, 15], 1),  # two extrema, 30 and 5: a 25-uV swing is a turn
        ([0.0, 30, 6, 10, 15], 0),  # 24 uV is not
        ([0.0, 30, 0], 0),  # one extremum: nothing to swing from
        ([0.0, 30, 0, 40, 0, 35, 0], 4),  # extrema 30, 0, 40, 0, 35: every swing >= 25 uV
    ],
)
def test_potential_turns_are_swings_of_25_uv_between_successive_extrema(segment, turns):
    assert _turns(np.array(segment)) == turns


@pytest.mark.parametrize(
    "x, rates, amplitudes",
    [
        # above a positive baseline: a 20-uV dip sets no direction; the rise to 400 sets "rising": no turn yet
        ([190, 200, 180, 400, 390], [0, 0, 0], [0, 0, 0]),
        # a fall of 100 uV from 200 (at 50 and 100 uV) then a rise: one turn at the 100-uV trough, a 100-uV swing
        ([150, 200, 100, 300, 250], [1, 1, 0], [100, 100, 0]),
        # a first fall of exactly 50 uV sets the direction at 50 uV
        ([90, 100, 50, 150, 140], [1, 0, 0], [50, 0, 0]),
        # a flat-bottomed trough is one trough
        ([0, 100, 0, 0, 100, 0], [1, 1, 0], [100, 100, 0]),
    ],
)
def test_willison_turns_from_a_baseline_away_from_zero_and_at_the_criterion(x, rates, amplitudes):
    seconds = 2.0
    got = _turns_amplitude(np.array(x, dtype=float), seconds)
    np.testing.assert_allclose(got[:3], np.log1p(np.array(rates) / seconds))
    np.testing.assert_allclose(got[3:], [np.log(a) if a else 0.0 for a in amplitudes])


def test_potentials_are_counted_two_milliseconds_apart_and_peaks_one():
    got = spikes_at(1000.0, 1.0, {100: 200.0, 102: 200.0})  # 2 ms apart: two potentials, two peaks
    assert np.expm1(got["log_potentials_per_s"]) == pytest.approx(2.0)
    assert np.expm1(got["log_peaks_per_s_above_50uv"]) == pytest.approx(2.0)
    # at 2,502 Hz two samples are 0.8 ms: one peak (a millisecond is 2.502 samples, rounded to 3)
    got = spikes_at(2502.0, 1.0, {100: 200.0, 102: 200.0})
    assert np.expm1(got["log_peaks_per_s_above_50uv"]) == pytest.approx(1.0)


def test_a_potential_is_a_peak_above_four_noise_sigmas_and_at_least_30_uv():
    background = np.tile([6.745, -6.745], 500)  # median |x| 6.745 uV: sigma 10 uV, 4 sigma 40 uV
    got = spikes_at(1000.0, 1.0, {500: 45.0}, background)
    assert np.exp(got["log_noise_sigma"]) == pytest.approx(10.0)
    assert np.expm1(got["log_potentials_per_s"]) == pytest.approx(1.0)
    got = spikes_at(1000.0, 1.0, {500: 30.5})  # silence: the 30-uV floor
    assert np.expm1(got["log_potentials_per_s"]) == pytest.approx(1.0)
    got = spikes_at(1000.0, 1.0, {500: 29.5})
    assert np.expm1(got["log_potentials_per_s"]) == pytest.approx(0.0)


def test_shape_summaries_are_the_median_and_the_interpolated_90th_percentile():
    got = spikes_at(1000.0, 1.0, {100: 100.0, 200: 200.0, 300: 400.0})  # three one-sample potentials
    assert got["log_amplitude_median"] == pytest.approx(np.log(200.0))
    # numpy's linear percentile of three values: 0.9 x 2 = 1.8, 80 % of the way from the second to the third
    assert got["log_amplitude_p90"] == pytest.approx(np.log(200.0) + 0.8 * np.log(2.0))


def test_a_potential_of_exactly_three_milliseconds_is_not_short():
    got = spikes_at(4000.0, 1.0, {i: 100.0 for i in range(1000, 1012)})  # 12 samples of 0.25 ms
    assert got["duration_ms_median"] == pytest.approx(3.0)
    assert got["short_fraction"] == 0.0
    got = spikes_at(4000.0, 1.0, {i: 100.0 for i in range(1000, 1011)})
    assert got["short_fraction"] == 1.0


def test_power_all_at_half_the_rate_puts_every_edge_frequency_there():
    rate = 10000.0
    x = 100.0 * (-1.0) ** np.arange(int(rate))  # the alternating signal: all its power in the Nyquist bin
    features = qemg_features(x[None], rate)
    names = qemg_feature_names(rate)
    for level in (50, 80, 95):
        assert features[0, names.index(f"log_edge_frequency_{level}")] == pytest.approx(np.log(rate / 2))


def test_a_dip_of_half_a_microvolt_across_the_baseline_is_a_phase():
    # phases are 1 + the sign changes of the non-zero samples inside the potential, however small: +, -0.5, +
    x = np.zeros(30)
    x[10:15] = [50.0, 100.0, -0.5, 100.0, 50.0]
    (got,) = shapes(x, [11], 1e-9, 1000.0)
    assert got["phases"] == 3
