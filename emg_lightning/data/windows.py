"""Recording -> fixed-length windows: tail trims, anti-aliased resampling, and data-quality rules."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from scipy import signal as sps

from emg_lightning.data.records import Recording
from emg_lightning.runtime.errors import ConfigError


@dataclass(frozen=True)
class QualityRules:
    """Which windows are dropped before anyone sees them (counted by reason in the table's summary)."""

    min_std_uv: float = 1.0  # windows quieter than this are flat (dead electrode, saturation runs)
    max_saturated_fraction: float = 0.05  # windows with more samples at the ADC limits are dropped

    def __post_init__(self) -> None:
        if not 0 <= self.max_saturated_fraction <= 1:
            raise ConfigError(f"data.max_saturated_fraction must be in [0, 1], got {self.max_saturated_fraction}")
        if self.min_std_uv < 0:
            raise ConfigError(f"data.min_std_uv must be >= 0, got {self.min_std_uv}")


@dataclass(frozen=True)
class WindowSettings:
    """How records become windows: length, hop, rate, filtering, trims and the quality rules. Every field is part
    of the cache key."""

    window_s: float = 1.0
    hop_s: float | None = None  # None: no overlap (hop = window), as ALSNet
    sample_rate: float | None = None  # None: keep the native rate (as the papers)
    trim_after_s: dict[str, float] = field(default_factory=dict)  # record-name prefix -> keep only [0, t) s
    bandpass_hz: tuple[float, float] | None = None  # zero-phase Butterworth (order 4) before windowing; None: raw
    quality: QualityRules = field(default_factory=QualityRules)

    def __post_init__(self) -> None:
        if self.window_s <= 0:
            raise ConfigError(f"data.window_s must be positive, got {self.window_s}")
        if self.hop_s is not None and self.hop_s <= 0:
            raise ConfigError(f"data.hop_s must be positive or null, got {self.hop_s}")
        if self.sample_rate is not None and self.sample_rate <= 0:
            raise ConfigError(f"data.sample_rate must be positive or null (native rate), got {self.sample_rate}")
        if self.bandpass_hz is not None:
            if len(self.bandpass_hz) != 2 or not 0 < self.bandpass_hz[0] < self.bandpass_hz[1]:
                raise ConfigError(
                    f"data.bandpass_hz must be [low, high] with 0 < low < high, or null; got {list(self.bandpass_hz)}"
                )

    def cache_key(self) -> dict:
        """Every field as one flat dict (the key caches were built under before the quality rules had a group)."""
        fields = {k: v for k, v in dataclasses.asdict(self).items() if k != "quality"}
        return {**fields, **dataclasses.asdict(self.quality)}

    @property
    def hop(self) -> float:
        return self.window_s if self.hop_s is None else self.hop_s

    def output_rate(self, native_rate: float) -> float:
        return native_rate if self.sample_rate is None else float(self.sample_rate)

    def window_samples(self, native_rate: float) -> int:
        # floor: 1 s at 23,437.5 Hz is 23,437 samples, ALSNet's input length
        return int(self.window_s * self.output_rate(native_rate))


@dataclass
class RecordWindows:
    windows: np.ndarray  # int16 (n, window_samples), in the record's ADC units at the output rate
    window_index: np.ndarray  # position of each kept window in the record (0, 1, ...)
    start_sample: np.ndarray  # offset of each kept window in the native-rate record
    dropped: Counter  # reason -> count


def resample(x: np.ndarray, native_rate: float, target_rate: float) -> np.ndarray:
    """Anti-aliased resampling from any rate to any rate.

    A simple ratio (native/5, native*2/5: denominator <= 1000) uses scipy's polyphase FIR (Kaiser window), as every
    N2001 figure of this project was computed; any other ratio (32,768 -> 23,437.5 or 4,687.5 Hz, i.e. 9375/65536)
    uses libsoxr's very-high-quality resampler, whose polyphase filter for such ratios scipy cannot build in
    reasonable memory. Both are linear-phase with the delay compensated; on a 1 kHz sine taken from 32,768 to
    4,687.5 Hz soxr's error is below 1e-6 of the amplitude, and a 3 kHz component above the new Nyquist frequency
    is removed (tests/unit/data/test_windows.py)."""
    if target_rate == native_rate:
        return x
    ratio = Fraction(target_rate / native_rate).limit_denominator(1000)
    if abs(float(ratio) * native_rate - target_rate) <= 1e-9 * target_rate:
        return sps.resample_poly(x, ratio.numerator, ratio.denominator)
    import soxr  # only here: most runs keep a simple ratio

    # round(len(x) x ratio) samples (scipy's path gives the ceiling: a last window may then fall short, counted)
    return soxr.resample(np.asarray(x, dtype=np.float64), native_rate, target_rate, quality="VHQ")


def trim_end_s(record_name: str, settings: WindowSettings) -> float | None:
    for prefix, end_s in settings.trim_after_s.items():
        if record_name.startswith(prefix):
            return float(end_s)
    return None


def count_windows(n_samples: int, fs: float, settings: WindowSettings) -> int:
    """Whole windows in a record, counted in native samples (no floating-point edge losses)."""
    length = int(settings.window_s * fs)
    if n_samples < length:
        return 0
    hop = settings.hop * fs
    k = int((n_samples - length) // hop) + 1
    while round(k * hop) + length <= n_samples:  # the last start may round down into the record
        k += 1
    return k


def window_record(record: Recording, settings: WindowSettings) -> RecordWindows:
    """Cut one record into windows; drop flat and saturated ones (counted by reason)."""
    fs = record.sample_rate
    digital = record.digital
    dropped: Counter = Counter()
    end_s = trim_end_s(record.name, settings)
    if end_s is not None:
        kept = min(len(digital), int(end_s * fs))
        dropped["trimmed"] += count_windows(len(digital), fs, settings) - count_windows(kept, fs, settings)
        digital = digital[:kept]
    n_windows = count_windows(len(digital), fs, settings)
    out_rate = settings.output_rate(fs)
    length = settings.window_samples(fs)
    native_length = int(settings.window_s * fs)
    signal_out = digital
    if (out_rate != fs or settings.bandpass_hz) and n_windows:
        x = digital.astype(np.float64)
        if settings.bandpass_hz:
            low, high = settings.bandpass_hz
            if high >= min(fs, out_rate) / 2:
                raise ConfigError(
                    f"data.bandpass_hz high edge {high} Hz must be below the Nyquist frequency "
                    f"{min(fs, out_rate) / 2} Hz"
                )
            x = sps.sosfiltfilt(sps.butter(4, [low, high], btype="bandpass", fs=fs, output="sos"), x)
        # ADC units again (rounding error < 0.04 uV, far below the ~2.5 uV noise floor): the cache stays int16
        signal_out = np.clip(np.round(resample(x, fs, out_rate)), -32768, 32767).astype(np.int16)
    saturated = record.clipped[: len(digital)]
    rows, index, starts = [], [], []
    for k in range(n_windows):
        start_native = int(round(k * settings.hop * fs))
        native = digital[start_native : start_native + native_length]
        if saturated[start_native : start_native + native_length].mean() > settings.quality.max_saturated_fraction:
            dropped["saturated"] += 1
            continue
        if native.astype(np.float64).std() / record.adc_gain < settings.quality.min_std_uv:
            dropped["flat"] += 1
            continue
        start_out = int(round(k * settings.hop * out_rate))
        window = signal_out[start_out : start_out + length]
        if len(window) < length:  # rounding at the very end of a resampled record
            dropped["short"] += 1
            continue
        rows.append(window)
        index.append(k)
        starts.append(start_native)
    windows = np.stack(rows) if rows else np.empty((0, length), dtype=np.int16)
    return RecordWindows(windows, np.asarray(index, dtype=np.int32), np.asarray(starts, dtype=np.int64), dropped)


def robust_scale(windows_uv: np.ndarray) -> float:
    """1.4826 x median absolute deviation of all samples: a noise-robust SD estimate (uV). Fitted on training
    subjects only, then applied to every window of the fold, so nothing about test subjects leaks into it."""
    x = np.asarray(windows_uv, dtype=np.float64).ravel()
    mad = np.median(np.abs(x - np.median(x)))
    return float(1.4826 * mad) if mad > 0 else 1.0
