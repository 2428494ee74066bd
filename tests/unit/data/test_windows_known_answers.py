"""Windowing against values derived by hand: window starts under a fractional hop, the quality rules at their
edges, the band-pass filter's attenuation from Butterworth's formula, clipping after resampling, the settings'
checks and the robust scale."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emg_lightning.data.records import Recording
from emg_lightning.data.windows import (
    QualityRules,
    WindowSettings,
    count_windows,
    resample,
    robust_scale,
    window_record,
)
from emg_lightning.runtime.errors import ConfigError


def record(digital, fs, gain=1.0, clipped=None):
    digital = np.asarray(digital, dtype=np.int16)
    clipped = np.zeros(len(digital), bool) if clipped is None else clipped
    return Recording("r", "s", "normal", fs, digital, gain, clipped_samples=clipped)


def noise(n, seed=0, sd=100.0):
    return np.round(np.random.default_rng(seed).standard_normal(n) * sd)


# -- where windows start ----------------------------------------------------------------------------------------------


def test_a_fractional_hop_rounds_each_start_and_a_last_start_may_round_down_into_the_record():
    # 1-s windows at 23,437.5 Hz are 23,437 samples; a 0.5-s hop is 11,718.75 samples: starts round(k x 11,718.75)
    # = 0, 11,719, 23,438 (23,437.5 to even), 35,156 (35,156.25 down). A record of 35,156 + 23,437 samples holds
    # four windows although (n - length) / hop = 2.99997.
    fs, length = 23437.5, 23437
    n = 35156 + length
    settings = WindowSettings(window_s=1.0, hop_s=0.5)
    assert count_windows(n, fs, settings) == 4
    assert count_windows(n - 1, fs, settings) == 3
    assert count_windows(length, fs, settings) == 1 and count_windows(length - 1, fs, settings) == 0
    digital = noise(n)
    w = window_record(record(digital, fs), settings)
    assert w.start_sample.tolist() == [0, 11719, 23438, 35156] and w.window_index.tolist() == [0, 1, 2, 3]
    for start, window in zip(w.start_sample, w.windows):
        assert np.array_equal(window, digital[start : start + length])
    assert w.windows.dtype == np.int16 and w.window_index.dtype == np.int32 and w.start_sample.dtype == np.int64


def test_resampled_windows_are_the_resampled_record_cut_at_the_output_rate():
    # 23,437.5 -> 4,687.5 Hz is 1/5: the record through scipy's polyphase filter, rounded to ADC units, cut every
    # 0.5 s = 2,343.75 output samples (starts 0, 2,344, 4,688 (4,687.5 to even))
    fs, n = 23437.5, int(2.0 * 23437.5)
    digital = noise(n)
    from scipy import signal as sps

    expected = np.round(sps.resample_poly(digital, 1, 5))
    w = window_record(record(digital, fs), WindowSettings(window_s=1.0, hop_s=0.5, sample_rate=4687.5))
    assert len(w.windows) == 3 and w.windows.shape[1] == 4687
    for start_out, window in zip([0, 2344, 4688], w.windows):
        assert np.array_equal(window, expected[start_out : start_out + 4687])


def test_a_last_window_the_resampled_record_is_too_short_for_is_counted_short():
    # 32,768 -> 3,000 Hz (no simple ratio: soxr), 0.1-s windows (3,276 native, 300 output samples) every 0.0625 s
    # (2,048 native, 187.5 output samples). 5,324 = 2,048 + 3,276 samples hold two native windows; resampled they
    # are round(5,324 x 3,000 / 32,768) = round(487.43) = 487 samples, and the second window would start at
    # round(187.5) = 188 and end at 488: one sample short.
    w = window_record(record(noise(5324), 32768.0), WindowSettings(window_s=0.1, hop_s=0.0625, sample_rate=3000))
    assert len(w.windows) == 1 and w.dropped == {"short": 1}
    assert len(resample(noise(5324), 32768.0, 3000.0)) == 487


# -- the quality rules at their edges ----------------------------------------------------------------------------------


def test_a_window_with_exactly_the_allowed_saturated_fraction_is_kept_one_more_sample_drops_it():
    fs = 1000.0  # 1-s windows of 1,000 samples: 5 % is 50 samples
    digital = noise(4000)
    clipped = np.zeros(4000, bool)
    clipped[:50] = True  # window 0: exactly 5 %
    clipped[1000:1051] = True  # window 1: 5.1 %
    clipped[2000:2051] = True  # window 2: 5.1 %
    w = window_record(record(digital, fs, clipped=clipped), WindowSettings())
    assert w.window_index.tolist() == [0, 3] and w.dropped == {"saturated": 2}


def test_flatness_is_judged_in_microvolts_and_a_window_at_exactly_the_limit_is_kept():
    fs, gain = 1000.0, 10.0  # 10 ADC units per uV
    alternating = np.tile([10, -10], 500)  # +-1 uV: standard deviation exactly 1 uV, the default limit
    quiet = np.tile([5, -5], 500)  # 0.5 uV: flat, though 5 ADC units
    digital = np.concatenate([alternating, quiet, quiet, noise(1000, sd=300)])
    w = window_record(record(digital, fs, gain=gain), WindowSettings())
    assert w.window_index.tolist() == [0, 3] and w.dropped == {"flat": 2}


def test_clipping_after_resampling_keeps_ADC_range_without_wrapping():
    # a square wave of +-32,000 overshoots the int16 range when band-limited (Gibbs: about 9 %): clipped to
    # [-32,768, 32,767], never wrapped around to the other sign
    fs = 23437.5
    n = int(2 * fs)
    square = np.where((np.arange(n) // 500) % 2 == 0, 32000, -32000)
    w = window_record(record(square, fs), WindowSettings(sample_rate=fs / 5))
    resampled_square = np.where((np.arange(w.windows.shape[1]) // 100) % 2 == 0, 1, -1)
    inner = slice(20, -20)
    assert w.windows.max() == 32767 and w.windows.min() == -32768  # it did overshoot: the clip was needed
    assert np.all(np.sign(w.windows[0][inner]) == resampled_square[inner])


# -- the band-pass filter ---------------------------------------------------------------------------------------------


def butterworth_bandpass_power_gain(f, low, high, fs, order):
    """|H|^2 of a digital Butterworth band-pass of ``order`` (bilinear transform, pre-warped edges):
    1 / (1 + x^(2 order)), x = (w^2 - w0^2) / (w (wh - wl)), w = tan(pi f / fs), w0^2 = wl wh."""
    w, wl, wh = (math.tan(math.pi * v / fs) for v in (f, low, high))
    x = (w * w - wl * wh) / (w * (wh - wl))
    return 1 / (1 + x ** (2 * order))


def test_the_band_pass_is_a_zero_phase_order_4_butterworth():
    fs, n = 23437.5, int(4 * 23437.5)
    t = np.arange(n) / fs
    settings = WindowSettings(bandpass_hz=(100.0, 2000.0))
    for f in (50.0, 500.0, 4000.0):
        sine = 1000 * np.sin(2 * np.pi * f * t)
        w = window_record(record(np.round(sine), fs), settings)
        middle = w.windows[1:3].astype(np.float64).ravel()  # away from the record's ends
        amplitude = np.sqrt(2) * middle.std()
        # forward and backward: the amplitude falls by |H|^2 (order 4), and the phase is kept
        expected = 1000 * butterworth_bandpass_power_gain(f, 100.0, 2000.0, fs, 4)
        assert amplitude == pytest.approx(expected, rel=0.05, abs=1.0), f
        if f == 500.0:
            start = w.start_sample[1]
            assert np.abs(middle[:2000] - sine[start : start + 2000] * expected / 1000).max() < 3.0
    assert butterworth_bandpass_power_gain(50.0, 100.0, 2000.0, fs, 5) < 0.3 * butterworth_bandpass_power_gain(
        50.0, 100.0, 2000.0, fs, 4
    )  # the case tells the order apart


def test_a_band_pass_edge_at_or_above_nyquist_is_refused_naming_the_limit():
    fs = 23437.5
    with pytest.raises(ConfigError, match="high edge 2343.75 Hz must be below the Nyquist frequency 2343.75 Hz"):
        window_record(record(noise(30000), fs), WindowSettings(bandpass_hz=(100.0, 2343.75), sample_rate=4687.5))
    with pytest.raises(ConfigError, match="high edge 12000.0 Hz must be below the Nyquist frequency 11718.75 Hz"):
        window_record(record(noise(30000), fs), WindowSettings(bandpass_hz=(100.0, 12000.0)))
    kept = window_record(record(noise(30000), fs), WindowSettings(bandpass_hz=(100.0, 2000.0), sample_rate=4687.5))
    assert kept.windows.shape == (1, 4687)


# -- the settings' own checks -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: QualityRules(max_saturated_fraction=1.01), r"max_saturated_fraction must be in \[0, 1\], got 1.01"),
        (lambda: QualityRules(max_saturated_fraction=-0.01), r"max_saturated_fraction must be in \[0, 1\], got -0.01"),
        (lambda: QualityRules(min_std_uv=-1.0), "data.min_std_uv must be >= 0, got -1.0"),
        (lambda: WindowSettings(hop_s=0.0), "data.hop_s must be positive or null, got 0.0"),
        (lambda: WindowSettings(sample_rate=0.0), r"sample_rate must be positive or null \(native rate\), got 0.0"),
        (lambda: WindowSettings(bandpass_hz=(0.0, 100.0)), r"bandpass_hz must be \[low, high\] .*got \[0.0, 100.0\]"),
        (lambda: WindowSettings(bandpass_hz=(100.0, 100.0)), r"data.bandpass_hz .*got \[100.0, 100.0\]"),
        (lambda: WindowSettings(bandpass_hz=(200.0, 100.0)), r"data.bandpass_hz .*got \[200.0, 100.0\]"),
        (lambda: WindowSettings(bandpass_hz=(100.0,)), r"data.bandpass_hz .*got \[100.0\]"),
        (lambda: WindowSettings(bandpass_hz=(10.0, 100.0, 200.0)), r"data.bandpass_hz .*got \[10.0, 100.0, 200.0\]"),
    ],
)  # fmt: skip
def test_settings_that_cannot_mean_anything_are_refused(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_the_edges_of_every_setting_are_accepted():
    QualityRules(max_saturated_fraction=0.0, min_std_uv=0.0)
    QualityRules(max_saturated_fraction=1.0)
    WindowSettings(sample_rate=1.0, hop_s=0.001, bandpass_hz=(0.5, 100.0))


def test_the_cache_key_holds_every_window_and_quality_setting_flat():
    settings = WindowSettings(window_s=0.5, hop_s=0.25, sample_rate=4687.5, bandpass_hz=(20.0, 2000.0),
                              quality=QualityRules(min_std_uv=2.0, max_saturated_fraction=0.1))  # fmt: skip
    assert settings.cache_key() == {
        "window_s": 0.5, "hop_s": 0.25, "sample_rate": 4687.5, "trim_after_s": {}, "bandpass_hz": (20.0, 2000.0),
        "min_std_uv": 2.0, "max_saturated_fraction": 0.1,
    }  # fmt: skip


# -- resampling and the robust scale ----------------------------------------------------------------------------------


def test_resampling_computes_in_double_precision_whatever_the_input():
    x = noise(32768).astype(np.float32)
    y = resample(x, 32768.0, 3000.0)
    assert y.dtype == np.float64
    assert np.array_equal(y, resample(x.astype(np.float64), 32768.0, 3000.0))


def test_the_robust_scale_is_1_4826_median_absolute_deviations_from_the_median():
    # median 3, absolute deviations 2, 1, 0, 1, 97: their median is 1
    assert robust_scale(np.array([1, 2, 3, 4, 100])) == pytest.approx(1.4826)
    assert robust_scale(np.array([10.0, 10.5, 11.0])) == pytest.approx(1.4826 * 0.5)  # a MAD below 1 is used
    # int16 windows, all samples: median 1.5, deviations 4.5, 0.5, 0.5, 3.5, their median 2
    assert robust_scale(np.array([[-3, 1], [2, 5]], dtype=np.int16)) == pytest.approx(1.4826 * 2.0)
    assert robust_scale(np.full((2, 5), 7.0)) == 1.0  # no spread: no scaling


def test_a_record_with_every_window_dropped_gives_an_empty_int16_table():
    w = window_record(record(np.zeros(3000), 1000.0), WindowSettings())
    assert w.windows.shape == (0, 1000) and w.windows.dtype == np.int16 and w.dropped == {"flat": 3}
