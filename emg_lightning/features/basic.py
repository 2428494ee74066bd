"""The classical EMG features of a raw window, in torch: computed on the same tensors the CNNs see (inside the
feature baseline network, ``models/features.py``) and as the first block of the qEMG set (``features/qemg.py``).

Features (per window; amplitude-like ones on a log scale so that BatchNorm can standardise them):
  time domain   log MAV, log RMS, log peak |x|, log waveform length, zero-crossing rate, slope-sign-change rate,
                Hjorth mobility and complexity, skewness, excess kurtosis
  spectral      log mean and median frequency, relative log power in fixed bands (those below Nyquist)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

# Needle-EMG band edges in Hz: MUAP energy sits in 100 Hz-2 kHz; fibrillations and noise above.
DEFAULT_BANDS_HZ = (20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0)
_TINY = 1e-6
TIME_DOMAIN_FEATURES = (
    "log_mav",
    "log_rms",
    "log_peak",
    "log_waveform_length",
    "zero_crossing_rate",
    "slope_sign_change_rate",
    "log_hjorth_mobility",
    "log_hjorth_complexity",
    "skewness",
    "excess_kurtosis",
)


def emg_features(
    x: torch.Tensor, sample_rate: float, bands_hz: Sequence[float] = DEFAULT_BANDS_HZ, threshold: float = 0.05
) -> torch.Tensor:
    """Features of windows ``x`` (batch, samples) -> (batch, n_features), named by ``feature_names``.

    ``threshold``: a zero crossing counts only with a step larger than this fraction of the window's RMS, a slope
    sign change only with a slope larger than this fraction of the slopes' RMS, so that baseline noise does not
    dominate them (the usual fixed-microvolt thresholds, made scale-free)."""
    x = x - x.mean(dim=-1, keepdim=True)
    rms = x.pow(2).mean(-1).sqrt()
    dx = x.diff(dim=-1)
    ddx = dx.diff(dim=-1)
    step = threshold * rms[:, None]
    zero_crossings = ((x[:, :-1] * x[:, 1:] < 0) & (dx.abs() >= step)).float().mean(-1)
    slope = threshold * dx.pow(2).mean(-1).sqrt()[:, None]
    slope_changes = (dx[:, :-1] * dx[:, 1:] < 0) & ((dx[:, :-1].abs() >= slope) | (dx[:, 1:].abs() >= slope))
    var_x, var_dx, var_ddx = x.var(-1) + _TINY, dx.var(-1) + _TINY, ddx.var(-1) + _TINY
    mobility = (var_dx / var_x).sqrt()
    complexity = (var_ddx / var_dx).sqrt() / mobility
    z = x / (x.std(-1, keepdim=True) + _TINY)
    time_domain = [
        x.abs().mean(-1).add(_TINY).log(),
        rms.add(_TINY).log(),
        x.abs().amax(-1).add(_TINY).log(),
        dx.abs().mean(-1).add(_TINY).log(),
        zero_crossings,
        slope_changes.float().mean(-1),
        mobility.log(),
        complexity.log(),
        z.pow(3).mean(-1),
        z.pow(4).mean(-1) - 3.0,
    ]
    power = torch.fft.rfft(x, dim=-1).abs().pow(2)
    # torch.fft.rfftfreq's own arithmetic, written out: the ONNX exporter has no rfftfreq
    frequencies = torch.arange(x.shape[-1] // 2 + 1, dtype=x.dtype, device=x.device) * (
        1.0 / (x.shape[-1] * (1.0 / sample_rate))
    )
    total = power.sum(-1) + _TINY
    mean_frequency = (power * frequencies).sum(-1) / total
    cumulative = power.cumsum(-1) / total[:, None]
    median_frequency = frequencies[(cumulative < 0.5).sum(-1).clamp(max=len(frequencies) - 1)]
    edges = _band_edges(sample_rate, bands_hz)
    band_powers = [
        (power * ((frequencies >= lo) & (frequencies < hi))).sum(-1) / total for lo, hi in zip(edges[:-1], edges[1:])
    ]
    spectral = [
        mean_frequency.add(1.0).log(),
        median_frequency.add(1.0).log(),
        *(p.add(_TINY).log() for p in band_powers),
    ]
    return torch.stack(time_domain + spectral, dim=-1)


def _band_edges(sample_rate: float, bands_hz: Sequence[float]) -> list[float]:
    """Edges below Nyquist, then Nyquist: n edges give n bands, the last one open up to Nyquist."""
    return [float(f) for f in bands_hz if f < sample_rate / 2] + [sample_rate / 2]


def feature_names(sample_rate: float, bands_hz: Sequence[float] = DEFAULT_BANDS_HZ) -> list[str]:
    """Names of ``emg_features``' columns, in order."""
    edges = _band_edges(sample_rate, bands_hz)
    bands = [f"log_power_{lo:g}_{hi:g}" for lo, hi in zip(edges[:-1], edges[1:])]
    return [*TIME_DOMAIN_FEATURES, "log_mean_frequency", "log_median_frequency", *bands]


def feature_count(sample_rate: float, bands_hz: Sequence[float] = DEFAULT_BANDS_HZ) -> int:
    return len(feature_names(sample_rate, bands_hz))
