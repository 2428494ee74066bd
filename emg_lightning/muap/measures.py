"""The clinical parameters of a motor-unit action potential (MUAP), measured on its template in the clinical band
(the record as recorded, baseline removed), as defined by Stålberg et al., "Quantitative analysis of individual motor
unit potentials: a proposition for standardized terminology and criteria for measurement", J. Clin. Neurophysiol.
3:313-348, 1986; thickness and size index after Sonoo & Stålberg, "The ability of MUP parameters to discriminate
between normal and neurogenic MUPs in concentric EMG", Electroenceph. Clin. Neurophysiol. 89:291-303, 1993.

- **Onset and end** (amplitude criterion): scanning outward from the main peak, the outermost samples whose
  magnitude reaches ``level`` = max(``level_uv``, ``noise_factor`` x the template's baseline SD) before the template
  stays below it for ``gap_ms`` (a satellite after a silent interval is not part of the duration, as in Stålberg
  et al.; nor is another unit's blip in the template's tails); duration = end - onset.
- **Amplitude**: peak to peak between onset and end.
- **Phases**: 1 + the sign changes between onset and end, counting only excursions beyond ``phase_uv`` (a ripple
  around the baseline is not a phase); **polyphasic**: more than 4 phases.
- **Turns**: reversals of direction by at least ``turn_uv`` (25 µV) from the last turning point.
- **Area**: the integral of the rectified template between onset and end (µV·ms).
- **Thickness**: area / amplitude (ms); **size index**: 2 log10(amplitude in mV) + thickness.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

POLYPHASIC_PHASES = 4  # more phases than this: polyphasic


@dataclass(frozen=True)
class MeasureSettings:
    level_uv: float = 10.0
    noise_factor: float = 3.0
    gap_ms: float = 3.0
    phase_uv: float = 10.0
    turn_uv: float = 25.0


@dataclass(frozen=True)
class MUAPMeasures:
    onset_ms: float  # from the template's first sample
    end_ms: float
    duration_ms: float
    amplitude_uv: float
    phases: int
    turns: int
    area_uv_ms: float
    thickness_ms: float
    size_index: float
    polyphasic: bool

    def as_dict(self) -> dict:
        return asdict(self)


def baseline_sd(template_uv: np.ndarray) -> float:
    """SD of the template's outer tenths (where no motor unit's spike lies)."""
    edge = max(2, len(template_uv) // 10)
    return float(np.std(np.concatenate([template_uv[:edge], template_uv[-edge:]])))


def measure(template_uv: np.ndarray, rate_hz: float, settings: MeasureSettings | None = None) -> MUAPMeasures:
    """The parameters of one template (µV, baseline 0) sampled at ``rate_hz``."""
    settings = settings or MeasureSettings()
    x = np.asarray(template_uv, dtype=np.float64)
    level = max(settings.level_uv, settings.noise_factor * baseline_sd(x))
    above = np.flatnonzero(np.abs(x) >= level)
    if len(above) == 0:  # nothing leaves the baseline: no potential to measure
        return MUAPMeasures(np.nan, np.nan, 0.0, float(np.ptp(x)), 0, 0, 0.0, np.nan, np.nan, False)
    onset, end = extent(above, int(np.argmax(np.abs(x))), max(1, int(round(settings.gap_ms * 1e-3 * rate_hz))))
    inside = x[onset : end + 1]
    ms = 1e3 / rate_hz
    amplitude = float(inside.max() - inside.min())
    area = float(np.abs(inside).sum() * ms)
    thickness = area / amplitude if amplitude > 0 else np.nan
    phases = count_phases(inside, settings.phase_uv)
    return MUAPMeasures(
        onset_ms=onset * ms,
        end_ms=end * ms,
        duration_ms=(end - onset) * ms,
        amplitude_uv=amplitude,
        phases=phases,
        turns=count_turns(x[max(0, onset - 1) : end + 2], settings.turn_uv),  # from the baseline and back
        area_uv_ms=area,
        thickness_ms=thickness,
        size_index=2 * np.log10(amplitude / 1000) + thickness if amplitude > 0 else np.nan,
        polyphasic=phases > POLYPHASIC_PHASES,
    )


def extent(above: np.ndarray, peak: int, gap: int) -> tuple[int, int]:
    """The first and last of the samples ``above`` the level that are linked to ``peak`` by steps shorter than
    ``gap`` samples."""
    split = np.flatnonzero(np.diff(above) >= gap)  # a silent stretch between above[k] and above[k + 1]
    starts = np.concatenate([[0], split + 1])
    ends = np.concatenate([split, [len(above) - 1]])
    k = int(np.searchsorted(above[starts], peak, side="right") - 1)
    return int(above[starts[k]]), int(above[ends[k]])


def count_phases(x: np.ndarray, threshold_uv: float) -> int:
    """1 + sign changes of ``x`` among the samples beyond +-``threshold_uv``."""
    signs = np.sign(x[np.abs(x) > threshold_uv])
    return int(1 + np.count_nonzero(np.diff(signs))) if len(signs) else 0


def count_turns(x: np.ndarray, min_change_uv: float) -> int:
    """Turning points with a change of at least ``min_change_uv`` on both sides: a peak counts once the signal has
    risen that much to it and fallen that much from it (a trough likewise)."""
    if len(x) < 2:
        return 0
    turns, direction = 0, 0  # 1 rising, -1 falling, 0 not yet moved by min_change_uv
    high = low = float(x[0])
    for value in map(float, x[1:]):
        if direction == 0:
            high, low = max(high, value), min(low, value)
            if high - value >= min_change_uv:
                direction, low = -1, value
            elif value - low >= min_change_uv:
                direction, high = 1, value
        elif direction == 1:
            if value > high:
                high = value
            elif high - value >= min_change_uv:
                turns, direction, low = turns + 1, -1, value
        else:
            if value < low:
                low = value
            elif value - low >= min_change_uv:
                turns, direction, high = turns + 1, 1, value
    return turns


def record_summary(measures: list[MUAPMeasures]) -> dict:
    """Per record: the number of units, mean and SD of each parameter, % polyphasic."""
    summary: dict = {"units": len(measures)}
    if not measures:
        return summary
    for name in ("duration_ms", "amplitude_uv", "phases", "turns", "area_uv_ms", "thickness_ms", "size_index"):
        values = np.array([getattr(m, name) for m in measures], dtype=float)
        values = values[np.isfinite(values)]
        summary[f"{name}_mean"] = float(values.mean()) if len(values) else None
        summary[f"{name}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else None
    summary["polyphasic_percent"] = 100.0 * float(np.mean([m.polyphasic for m in measures]))
    return summary
