"""Record-level needle-EMG statistics, defined as in the N2001 calibration table (synthetic-emg.md, section 1.3).

Used to calibrate the synthetic generator against the real recordings and to describe a data directory.
"""

from __future__ import annotations

import numpy as np
from scipy import signal as sps

STATISTICS = (
    "raw_sd_uv",
    "hf_sd_uv",
    "spikes_per_s",
    "spike_pp_uv",
    "largest_spike_uv",
    "half_width_ms",
    "power_above_500hz",
    "median_frequency_hz",
    "kurtosis",
)


def record_statistics(x_uv: np.ndarray, fs: float) -> dict[str, float]:
    """Statistics of one record in microvolts."""
    x = np.asarray(x_uv, dtype=np.float64)
    x = x - x.mean()
    hf = sps.sosfiltfilt(sps.butter(2, 20.0, btype="highpass", fs=fs, output="sos"), x)
    mad = np.median(np.abs(hf - np.median(hf)))
    threshold = max(40.0, 6.0 * mad)
    peaks, _ = sps.find_peaks(np.abs(hf), height=threshold, distance=max(1, int(0.004 * fs)))
    half = int(0.003 * fs)
    pp = np.array([np.ptp(hf[max(0, p - half) : p + half + 1]) for p in peaks]) if len(peaks) else np.array([])
    widths = sps.peak_widths(np.abs(hf), peaks, rel_height=0.5)[0] / fs * 1e3 if len(peaks) else np.array([])
    freqs, psd = sps.welch(x, fs=fs, nperseg=min(len(x), 4096))
    cumulative = np.cumsum(psd)
    total = cumulative[-1] if cumulative[-1] > 0 else 1.0
    centred = hf - hf.mean()
    variance = centred.var()
    return {
        "raw_sd_uv": float(x.std()),
        "hf_sd_uv": float(hf.std()),
        "spikes_per_s": len(peaks) / (len(x) / fs),
        "spike_pp_uv": float(np.median(pp)) if len(pp) else 0.0,
        "largest_spike_uv": float(pp.max()) if len(pp) else 0.0,
        "half_width_ms": float(np.median(widths)) if len(widths) else float("nan"),
        "power_above_500hz": float(psd[freqs > 500].sum() / total),
        "median_frequency_hz": float(freqs[np.searchsorted(cumulative, 0.5 * total)]),
        "kurtosis": float((centred**4).mean() / variance**2) if variance > 0 else float("nan"),
    }


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Probability that a random positive scores higher than a random negative (ties count half)."""
    positive, negative = np.asarray(positive, float), np.asarray(negative, float)
    greater = (positive[:, None] > negative[None, :]).mean()
    ties = (positive[:, None] == negative[None, :]).mean()
    return float(greater + 0.5 * ties)
