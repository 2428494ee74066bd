"""One record's motor-unit analysis, as a clinician reads it: the units found, each unit's firing and clinical
parameters, and the record's summary with the decomposition's yield."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emg_lightning.muap.decompose import Decomposition, DecompositionSettings, decompose, interval_cov
from emg_lightning.muap.measures import MeasureSettings, MUAPMeasures, measure, record_summary
from emg_lightning.runtime.errors import DataError

LOW_YIELD = 0.3  # below this share of the band-passed energy explained, the units describe a minority of the signal
UNIT_COLUMNS = (
    "unit", "discharges", "firing_rate_hz", "isi_cov", "duration_ms", "amplitude_uv", "phases", "turns",
    "area_uv_ms", "thickness_ms", "size_index", "polyphasic",
)  # fmt: skip


class NoPotentialsFound(DataError):
    """A record with no unit that fires like a motor unit (flat, noise only, or an interference pattern)."""


@dataclass(frozen=True)
class UnitFiring:
    discharges: int
    rate_hz: float  # 1 / the median inter-discharge interval (robust to a missed discharge's double interval)
    isi_cov: float  # SD / mean of the inter-discharge intervals


@dataclass
class RecordAnalysis:
    rate_hz: float
    duration_s: float
    decomposition: Decomposition
    measures: list[MUAPMeasures]
    firing: list[UnitFiring]
    summary: dict

    @property
    def low_yield(self) -> bool:
        return self.decomposition.explained_energy < LOW_YIELD

    def unit_rows(self) -> list[dict]:
        return [
            {"unit": i + 1, "discharges": f.discharges, "firing_rate_hz": f.rate_hz, "isi_cov": f.isi_cov,
             **{k: v for k, v in m.as_dict().items() if k in UNIT_COLUMNS}}
            for i, (m, f) in enumerate(zip(self.measures, self.firing))
        ]  # fmt: skip


def firing_of(discharges: np.ndarray, rate_hz: float) -> UnitFiring:
    times = np.sort(discharges) / rate_hz
    intervals = np.diff(times)
    rate = 1.0 / float(np.median(intervals)) if len(intervals) and np.median(intervals) > 0 else float("nan")
    cov = interval_cov(discharges)
    return UnitFiring(len(times), float(rate), cov if np.isfinite(cov) else float("nan"))


SATURATION_MARGIN_MS = 5.0  # a clipped stretch's surroundings are excluded too (the filter rings around a clip)


def around_clipping(clipped: np.ndarray, rate_hz: float, margin_ms: float = SATURATION_MARGIN_MS) -> np.ndarray:
    """The clipped samples (``data.records.at_adc_limits``) widened by ``margin_ms`` either side."""
    clipped = np.asarray(clipped, dtype=bool)
    if not clipped.any():
        return clipped
    margin = int(round(margin_ms * 1e-3 * rate_hz))
    return np.convolve(clipped.astype(float), np.ones(2 * margin + 1), mode="same") > 0


def analyse(
    signal_uv: np.ndarray,
    rate_hz: float,
    settings: DecompositionSettings | None = None,
    measure_settings: MeasureSettings | None = None,
    excluded: np.ndarray | None = None,
) -> RecordAnalysis:
    """Decompose, measure and summarise one record; NoPotentialsFound when no unit fires like a motor unit.
    ``excluded``: samples to leave out (``around_clipping``)."""
    signal_uv = np.asarray(signal_uv, dtype=np.float64)
    if not np.isfinite(signal_uv).all():
        raise DataError("the signal holds non-finite samples (NaN or inf)")
    settings = settings or DecompositionSettings()
    decomposition = decompose(signal_uv, rate_hz, settings, excluded)
    if decomposition.noise_uv <= 0:
        held = float(np.mean(np.diff(signal_uv) == 0)) if len(signal_uv) > 1 else 1.0
        raise NoPotentialsFound(
            f"no motor-unit potentials found: the signal is flat in the {settings.detect_band_hz[0]:g}-"
            f"{settings.detect_band_hz[1]:g} Hz detection band ({held:.1%} of consecutive samples are equal: a flat "
            f"or held record)"
        )
    if not decomposition.units:
        raise NoPotentialsFound(
            f"no motor-unit potentials found: {decomposition.candidates} spikes above {settings.threshold:g} x the "
            f"{decomposition.noise_uv:.2g} uV noise, none firing like a motor unit (at least "
            f"{settings.min_discharges} discharges): a flat, noise-only or interference record"
        )
    measures = [measure(u.template_uv, rate_hz, measure_settings) for u in decomposition.units]
    # a unit whose template nowhere rises above its own background (an interference pattern's average) has no
    # potential to measure: it is left out, and counted
    measurable = [i for i, m in enumerate(measures) if np.isfinite(m.onset_ms)]
    unmeasurable = len(measures) - len(measurable)
    decomposition.units = [decomposition.units[i] for i in measurable]
    measures = [measures[i] for i in measurable]
    if not measures:
        raise NoPotentialsFound(
            f"no motor-unit potentials found: the {unmeasurable} unit(s) found have templates that do not rise "
            f"above their own background (an interference pattern)"
        )
    firing = [firing_of(u.discharges, rate_hz) for u in decomposition.units]
    summary = {
        **record_summary(measures),
        "firing_rate_hz_mean": float(np.nanmean([f.rate_hz for f in firing])),
        "explained_energy": decomposition.explained_energy,
        "low_yield": decomposition.explained_energy < LOW_YIELD,
        "candidates": decomposition.candidates,
        "unmeasurable_units": unmeasurable,
        "noise_uv": decomposition.noise_uv,
        "excluded_s": float(np.count_nonzero(excluded)) / rate_hz if excluded is not None else 0.0,
    }
    return RecordAnalysis(rate_hz, len(signal_uv) / rate_hz, decomposition, measures, firing, summary)
