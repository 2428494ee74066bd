"""Quantitative-EMG features of needle-EMG windows (pure numpy/scipy): what a clinician's qEMG analysis measures,
per window, as numbers a linear model can weigh.

Families (names from ``qemg_feature_names``):
  time / spectral  the classical baseline's features (``emg_features``: MAV, RMS, peak, waveform length, zero
                   crossings, slope sign changes, Hjorth, skewness, kurtosis, mean / median frequency, band powers)
  welch            log absolute power in log-spaced bands (Welch periodogram), spectral edge frequencies (50, 80,
                   95 %), flatness, entropy and the log-log slope between 100 Hz and 5 kHz
  spike counts     peaks of |x| per second above absolute (50 uV-2 mV) and noise-relative (3-12 x the robust noise
                   sigma) thresholds, at least 1 ms apart: recruitment and interference density
  interference     Willison's turns-amplitude analysis at 50, 100 and 200 uV (turns per second, mean amplitude per
                   turn), percentiles of |x| (50-99.9 %) of the raw and of the 1-kHz high-passed signal (where the
                   sharp spikes of short myopathic potentials live), the steepest slope
  MUAP shape       for up to ``MAX_POTENTIALS`` largest potentials (peaks above max(4 sigma, 30 uV), 2 ms apart): peak
                   to peak amplitude, half-width, duration, phases, turns, area / amplitude ("thickness"), rise time;
                   each summarised by its median and its 90th percentile, plus the fractions of polyphasic (>= 5
                   phases) and of short (< 3 ms) potentials. Myopathic potentials are small, short and polyphasic,
                   neurogenic (ALS) ones large, long and few: the MUAP measures of synthetic-emg.md section 1.1.

Amplitudes are in microvolts, times in milliseconds; amplitude-like values on a log scale. Every value is finite:
a window without potentials gets zero counts and zero shape values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy import signal

from emg_lightning.features.basic import emg_features, feature_names
from emg_lightning.muap import measures
from emg_lightning.muap.measures import count_phases
from emg_lightning.runtime.files import source_version

# The hash of the code that computes the features: cached feature files carry it in their name, so a change to a
# feature's definition is never answered from a stale file (and no number has to be remembered to be bumped)
QEMG_VERSION = source_version(Path(__file__), Path(__file__).with_name("basic.py"), Path(measures.__file__))
WELCH_EDGES_HZ = (20, 50, 100, 200, 350, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500, 10000)
ABSOLUTE_THRESHOLDS_UV = (50, 100, 200, 500, 1000, 2000)
RELATIVE_THRESHOLDS = (3, 5, 8, 12)
TURNS_AMPLITUDE_UV = (50, 100, 200)
PERCENTILES = (50, 75, 90, 95, 99, 99.9)
HIGH_PASS_HZ = 1000.0
MAX_POTENTIALS = 64
POTENTIAL_HALF_SPAN_MS = 6.0  # a MUAP lasts up to ~12 ms (neurogenic ones longer, clipped here)
TURN_UV = 25.0  # an extremum counts as a turn when it differs from the previous one by this much
SHAPE_MEASURES = ("log_amplitude", "half_width_ms", "duration_ms", "phases", "turns", "thickness_ms", "rise_ms")
_TINY = 1e-9


def qemg_feature_names(sample_rate: float) -> list[str]:
    """Column names of ``qemg_features``, in order."""
    edges = _welch_edges(sample_rate)
    return [
        *feature_names(sample_rate),
        *(f"welch_log_power_{lo:g}_{hi:g}" for lo, hi in zip(edges[:-1], edges[1:])),
        "log_edge_frequency_50",
        "log_edge_frequency_80",
        "log_edge_frequency_95",
        "spectral_flatness",
        "spectral_entropy",
        "spectral_slope",
        "log_noise_sigma",
        *(f"log_peaks_per_s_above_{t}uv" for t in ABSOLUTE_THRESHOLDS_UV),
        *(f"log_peaks_per_s_above_{k}sigma" for k in RELATIVE_THRESHOLDS),
        *(f"log_turns_per_s_{c}uv" for c in TURNS_AMPLITUDE_UV),
        *(f"log_amplitude_per_turn_{c}uv" for c in TURNS_AMPLITUDE_UV),
        *(f"log_abs_percentile_{q:g}" for q in PERCENTILES),
        *(f"log_high_passed_abs_percentile_{q:g}" for q in PERCENTILES),
        "log_max_slope_uv_per_ms",
        "log_potentials_per_s",
        *(f"{m}_{stat}" for m in SHAPE_MEASURES for stat in ("median", "p90")),
        "polyphasic_fraction",
        "short_fraction",
    ]


def qemg_features(windows_uv: np.ndarray, sample_rate: float) -> np.ndarray:
    """Features of windows (n, samples) in microvolts at ``sample_rate`` Hz -> float32 (n, n_features)."""
    x = np.asarray(windows_uv, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 64:
        raise ValueError(f"qemg_features needs (windows, samples >= 64), got shape {x.shape}")
    x = x - x.mean(axis=1, keepdims=True)
    classical = emg_features(torch.from_numpy(x), sample_rate).numpy()
    welch = _welch_features(x, sample_rate)
    high_pass = signal.butter(4, min(HIGH_PASS_HZ, 0.4 * sample_rate), "highpass", fs=sample_rate, output="sos")
    spikes = np.stack([_spike_features(row, signal.sosfiltfilt(high_pass, row), sample_rate) for row in x])
    return np.concatenate([classical, welch, spikes], axis=1).astype(np.float32)


def _welch_edges(sample_rate: float) -> list[float]:
    return [float(f) for f in WELCH_EDGES_HZ if f < sample_rate / 2] + [sample_rate / 2]


def _welch_features(x: np.ndarray, sample_rate: float) -> np.ndarray:
    segment = min(x.shape[1], 1 << int(np.log2(max(sample_rate / 40, 64))))  # ~40 Hz resolution
    frequencies, power = signal.welch(x, fs=sample_rate, nperseg=segment, axis=1)
    edges = _welch_edges(sample_rate)
    bands = [
        np.log(power[:, (frequencies >= lo) & (frequencies < hi)].sum(axis=1) + _TINY)
        for lo, hi in zip(edges[:-1], edges[1:])
    ]
    above = frequencies >= edges[0]
    p, f = power[:, above] + _TINY, frequencies[above]
    share = p / p.sum(axis=1, keepdims=True)
    cumulative = np.cumsum(share, axis=1)
    edge_frequencies = [np.log(f[np.minimum((cumulative < q).sum(axis=1), len(f) - 1)]) for q in (0.5, 0.8, 0.95)]
    flatness = np.exp(np.log(p).mean(axis=1)) / p.mean(axis=1)
    entropy = -(share * np.log(share)).sum(axis=1) / np.log(share.shape[1])
    fit = (f >= 100) & (f <= min(5000, sample_rate / 2))
    log_f = np.log(f[fit])
    centred = log_f - log_f.mean()
    slope = (np.log(p[:, fit]) * centred).sum(axis=1) / (centred**2).sum()
    return np.stack([*bands, *edge_frequencies, flatness, entropy, slope], axis=1)


def _spike_features(x: np.ndarray, high_passed: np.ndarray, sample_rate: float) -> np.ndarray:
    seconds = len(x) / sample_rate
    magnitude = np.abs(x)
    sigma = float(np.median(magnitude) / 0.6745) + _TINY  # robust noise level: most samples are baseline
    one_ms = max(1, round(sample_rate / 1000))
    counts = []
    for threshold in [*ABSOLUTE_THRESHOLDS_UV, *(k * sigma for k in RELATIVE_THRESHOLDS)]:
        peaks, _ = signal.find_peaks(magnitude, height=threshold, distance=one_ms)
        counts.append(np.log1p(len(peaks) / seconds))
    peaks, properties = signal.find_peaks(magnitude, height=max(4 * sigma, 30.0), distance=2 * one_ms)
    n_potentials = len(peaks)
    if n_potentials > MAX_POTENTIALS:
        peaks = peaks[np.argsort(properties["peak_heights"])[-MAX_POTENTIALS:]]
    shape = _potential_shapes(x, np.sort(peaks), sigma, sample_rate)
    if len(shape):
        summary = np.concatenate([np.percentile(shape, [50, 90], axis=0).T.ravel()])
        fractions = [float(np.mean(shape[:, 3] >= 5)), float(np.mean(shape[:, 2] < 3.0))]
    else:
        summary, fractions = np.zeros(2 * len(SHAPE_MEASURES)), [0.0, 0.0]
    interference = [
        *_turns_amplitude(x, seconds),
        *np.log(np.percentile(magnitude, PERCENTILES) + 1e-3),
        *np.log(np.percentile(np.abs(high_passed), PERCENTILES) + 1e-3),
        np.log(np.abs(np.diff(x)).max() * sample_rate / 1000 + 1e-3),
    ]
    return np.array(
        [np.log(sigma), *counts, *interference, np.log1p(n_potentials / seconds), *summary, *fractions],
        dtype=np.float64,
    )


def _turns_amplitude(x: np.ndarray, seconds: float) -> list[float]:
    """Willison's analysis as a zig-zag with hysteresis: a turn is a peak or trough from which the signal moves back
    by at least the criterion; log turns per second for each criterion, then log mean swing (from the previous
    turn, or the start's extreme, to this one) per turn, 0 without turns."""
    extrema = x[np.flatnonzero(np.diff(np.sign(np.diff(x))) != 0) + 1].tolist()
    rates, amplitudes = [], []
    for criterion in TURNS_AMPLITUDE_UV:
        turns, total = 0, 0.0
        high = low = pivot = extreme = extrema[0] if extrema else 0.0
        rising = None  # no direction until the signal has moved by the criterion
        for value in extrema[1:]:
            if rising is None:
                high, low = max(high, value), min(low, value)
                if value - low >= criterion:
                    rising, pivot, extreme = True, low, value
                elif high - value >= criterion:
                    rising, pivot, extreme = False, high, value
            elif (value > extreme) if rising else (value < extreme):
                extreme = value
            elif abs(value - extreme) >= criterion:
                turns, total = turns + 1, total + abs(extreme - pivot)
                pivot, extreme, rising = extreme, value, not rising
        rates.append(np.log1p(turns / seconds))
        amplitudes.append(np.log(total / turns) if turns else 0.0)
    return rates + amplitudes


def _potential_shapes(x: np.ndarray, peaks: np.ndarray, sigma: float, sample_rate: float) -> np.ndarray:
    """One row of ``SHAPE_MEASURES`` per potential centred on ``peaks`` (segments clipped at the window's ends)."""
    if len(peaks) == 0:
        return np.empty((0, len(SHAPE_MEASURES)))
    half = max(2, round(POTENTIAL_HALF_SPAN_MS * sample_rate / 1000))
    ms_per_sample = 1000.0 / sample_rate
    offsets = np.arange(-half, half + 1)
    index = peaks[:, None] + offsets[None, :]
    inside = (index >= 0) & (index < len(x))
    segments = np.where(inside, x[np.clip(index, 0, len(x) - 1)], 0.0)
    centre = half
    peak_value = segments[:, centre]
    amplitude = segments.max(axis=1) - segments.min(axis=1)
    # half-width: the contiguous run around the peak where the signal keeps the peak's sign above half its value
    above_half = np.sign(peak_value)[:, None] * segments >= 0.5 * np.abs(peak_value)[:, None]
    half_width = (_run_length(above_half, centre, 1) + _run_length(above_half, centre, -1) - 1) * ms_per_sample
    # duration: from the first to the last sample above the baseline level (10 % of the amplitude, at least 3 sigma)
    level = np.maximum(0.1 * amplitude, 3 * sigma)[:, None]
    active = np.abs(segments) >= level
    first = active.argmax(axis=1)
    last = active.shape[1] - 1 - active[:, ::-1].argmax(axis=1)
    duration = (last - first + 1) * ms_per_sample
    span = (offsets[None, :] + centre >= first[:, None]) & (offsets[None, :] + centre <= last[:, None])
    # phases: 1 + the sign changes inside the potential, as the MUAP measures count them (a sample exactly at 0 is
    # no phase of its own); turns: extrema that differ from the previous by TURN_UV
    phases = np.array([count_phases(seg[s], 0.0) for seg, s in zip(segments, span)])
    turns = np.array([_turns(seg[s]) for seg, s in zip(segments, span)])
    thickness = (np.abs(segments) * span).sum(axis=1) * ms_per_sample / (amplitude + _TINY)
    near = np.abs(offsets) <= max(1, round(2.0 * sample_rate / 1000))
    rise = np.abs(segments[:, near].argmax(axis=1) - segments[:, near].argmin(axis=1)) * ms_per_sample
    return np.stack([np.log(amplitude + _TINY), half_width, duration, phases, turns, thickness, rise], axis=1)


def _run_length(mask: np.ndarray, start: int, direction: int) -> np.ndarray:
    """Per row, how many consecutive True values from column ``start`` going ``direction`` (+1 right, -1 left)."""
    part = mask[:, start:] if direction > 0 else mask[:, start::-1]
    broken = ~part
    return np.where(broken.any(axis=1), broken.argmax(axis=1), part.shape[1])


def _turns(segment: np.ndarray) -> int:
    slope_change = np.flatnonzero(np.diff(np.sign(np.diff(segment))) != 0) + 1
    extrema = segment[slope_change]
    return int(np.count_nonzero(np.abs(np.diff(extrema)) >= TURN_UV)) if len(extrema) > 1 else 0
