"""A record's motor-unit summary as one feature vector: what a record-level classifier reads (``data.features=muap``).

The values are the record summary ``analysis.analyse`` gives a clinician -- how many units, their mean duration,
amplitude, phases, turns, area, thickness, size index and their spread, % polyphasic, firing rate -- plus what
describes the decomposition itself (spikes detected per second, share of the energy explained). Amplitude and area
span decades between a myopathic and a reinnervated unit: their means enter as log10. A record where no unit was
found has 0 units and its per-unit values are NaN ("not measurable"): the linear model fills them with its training
rows' mean after standardising (``models/linear.py``), so the unit count carries that record's information.

``MUAP_CODE_VERSION`` hashes the source of this package's analysis: any change to the decomposition or the
measures gives cached features a new key, so a stale value is never read back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emg_lightning.muap.analysis import NoPotentialsFound, analyse, around_clipping
from emg_lightning.runtime.files import source_version

RECORD_FEATURE_NAMES = (
    "units", "spikes_per_s", "explained_energy", "firing_rate_hz_mean",
    "duration_ms_mean", "duration_ms_sd", "log10_amplitude_uv_mean", "amplitude_uv_sd", "phases_mean", "turns_mean",
    "log10_area_uv_ms_mean", "thickness_ms_mean", "size_index_mean", "polyphasic_percent",
)  # fmt: skip
# what the features are computed by: every module a record's values depend on
MUAP_CODE_VERSION = source_version(
    *(Path(__file__).with_name(name) for name in ("analysis.py", "decompose.py", "measures.py", "features.py"))
)


def record_muap_features(signal_uv: np.ndarray, rate_hz: float, clipped: np.ndarray | None = None) -> np.ndarray:
    """``RECORD_FEATURE_NAMES`` of one record in microvolts at its native rate (``clipped``: samples at the ADC
    limits, left out with their surroundings). float64; NaN per-unit values when no unit is found."""
    excluded = None if clipped is None else around_clipping(clipped, rate_hz)
    duration_s = len(signal_uv) / rate_hz
    try:
        analysis = analyse(signal_uv, rate_hz, excluded=excluded)
    except NoPotentialsFound:
        values = dict.fromkeys(RECORD_FEATURE_NAMES, float("nan"))
        values.update(units=0.0, polyphasic_percent=float("nan"), spikes_per_s=0.0, explained_energy=0.0)
        return np.array([values[name] for name in RECORD_FEATURE_NAMES], dtype=np.float64)
    summary = analysis.summary
    values = {
        "units": float(summary["units"]),
        "spikes_per_s": summary["candidates"] / duration_s,
        "explained_energy": summary["explained_energy"],
        "firing_rate_hz_mean": summary["firing_rate_hz_mean"],
        "log10_amplitude_uv_mean": _log10(summary.get("amplitude_uv_mean")),
        "log10_area_uv_ms_mean": _log10(summary.get("area_uv_ms_mean")),
        "polyphasic_percent": summary["polyphasic_percent"],
    }
    for name in ("duration_ms_mean", "duration_ms_sd", "amplitude_uv_sd", "phases_mean", "turns_mean",
                 "thickness_ms_mean", "size_index_mean"):  # fmt: skip
        values[name] = float("nan") if summary.get(name) is None else float(summary[name])
    return np.array([values[name] for name in RECORD_FEATURE_NAMES], dtype=np.float64)


def _log10(value: float | None) -> float:
    return float(np.log10(value)) if value is not None and value > 0 else float("nan")
