"""Agreement with an expert's decomposition of the same record (an ``.eaf`` file): which found unit is which expert
unit, and for matched units how many of the expert's discharges were found (recall) and how many found discharges
are the expert's (precision), within a tolerance, counted only inside the expert unit's annotated span (an expert
annotates some units over part of the record only).

Units are matched by template correlation: the expert's template and ours, both on the expert's time grid, aligned
at the discharge times and differentiated (the slow far-field part of two units' templates looks alike; their spikes
do not); expert and found units are paired one to one to maximise the total correlation (the Hungarian
assignment), a pair counting only when its correlation reaches ``min_correlation``. Whether the ``.eaf`` describes
this record at all is checked by content (``reference_fits_record``): the record's average at the expert's
discharge times must resemble the expert's templates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.signal import resample_poly

from emg_lightning.muap.decompose import Decomposition, MotorUnit, snippets
from emg_lightning.muap.eaf import Annotation, ExpertTemplate

REGULAR_MIN_DISCHARGES = 10  # expert units with fewer are scored apart: sparsely annotated


@dataclass(frozen=True)
class UnitAgreement:
    expert_unit: int
    expert_discharges: int
    found_unit: int | None  # index into the decomposition's units
    correlation: float
    true_positives: int
    found_in_span: int  # found discharges inside the expert unit's span
    precision: float | None
    recall: float


def expert_template_uv(template: ExpertTemplate, gain: float | None) -> np.ndarray:
    """EMGLAB templates hold ADC units despite ``<units>uV</units>`` (the N2001 files: values about 13x the
    record's µV, ``<gain>`` 13.107 = the record's ADC gain): divided by the gain when one is given."""
    return template.samples_uv / gain if gain else template.samples_uv


def on_expert_grid(unit: MotorUnit, rate_hz: float, template: ExpertTemplate) -> np.ndarray:
    """Our template resampled to the expert's rate and cut to the expert template's span around the discharge."""
    up, down = _ratio(template.rate_hz, rate_hz)
    ours = resample_poly(unit.template_uv, up, down)
    centre = int(round(unit.centre * template.rate_hz / rate_hz))
    before, after = template.index, len(template.samples_uv) - template.index
    padded = np.pad(ours, (before, after))
    return padded[centre : centre + before + after]


def _ratio(target: float, source: float) -> tuple[int, int]:
    from fractions import Fraction

    fraction = Fraction(target / source).limit_denominator(64)
    return fraction.numerator, fraction.denominator


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a**2).sum() * (b**2).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def shape_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of the two templates' first differences: their spikes, not their slow far-field parts."""
    return correlation(np.diff(a), np.diff(b))


def reference_fits_record(
    signal_uv: np.ndarray, rate_hz: float, annotation: Annotation, gain: float | None = None
) -> float:
    """Median over the expert's templated units of the correlation between the record's median at the expert's
    discharge times and the expert's template: near 1 for the record the file describes, near 0 for another."""
    scores = []
    for unit, template in annotation.templates.items():
        times = annotation.discharges_s.get(unit)
        if times is None or len(times) < 3:
            continue
        centres = np.round(times * rate_hz).astype(int)
        half = int(round(template.index / template.rate_hz * rate_hz))
        average = np.median(snippets(signal_uv - np.median(signal_uv), centres, half), axis=0)
        up, down = _ratio(template.rate_hz, rate_hz)
        average = resample_poly(average, up, down)
        expert = expert_template_uv(template, gain)
        n = min(len(average), len(expert))
        scores.append(correlation(average[:n], expert[:n]))
    return float(np.median(scores)) if scores else 0.0


def agreement(
    decomposition: Decomposition,
    annotation: Annotation,
    gain: float | None = None,
    tolerance_ms: float = 0.5,
    min_correlation: float = 0.7,
) -> list[UnitAgreement]:
    """One row per expert unit with a template, in the expert's unit order."""
    rate = decomposition.rate_hz
    expert_ids = list(annotation.templates)
    scores = np.zeros((len(expert_ids), len(decomposition.units)))
    for i, expert_id in enumerate(expert_ids):
        template = annotation.templates[expert_id]
        expert = expert_template_uv(template, gain)
        for j, unit in enumerate(decomposition.units):
            scores[i, j] = shape_correlation(on_expert_grid(unit, rate, template), expert)
    pairs = dict(zip(*linear_sum_assignment(-scores))) if scores.size else {}
    rows = []
    for row_index, unit_id in enumerate(expert_ids):
        times = annotation.discharges_s.get(unit_id, np.zeros(0))
        best = pairs.get(row_index)
        found = int(best) if best is not None and scores[row_index, best] >= min_correlation else None
        tp = in_span = 0
        if found is not None and len(times):
            ours = decomposition.units[found].discharges / rate
            start, end = times.min() - tolerance_ms / 1e3, times.max() + tolerance_ms / 1e3
            ours = ours[(ours >= start) & (ours <= end)]
            in_span = len(ours)
            tp = _matched(ours, times, tolerance_ms / 1e3)
        rows.append(
            UnitAgreement(
                unit_id,
                len(times),
                found,
                float(scores[row_index, best]) if best is not None else 0.0,
                tp,
                in_span,
                tp / in_span if in_span else None,
                tp / len(times) if len(times) else 0.0,
            )
        )
    return rows


def _matched(found_s: np.ndarray, expert_s: np.ndarray, tolerance_s: float) -> int:
    """Discharges paired one to one within the tolerance (greedy in time order: both are sorted and a unit's
    discharges are tens of ms apart, far more than the tolerance)."""
    i = j = pairs = 0
    found_s, expert_s = np.sort(found_s), np.sort(expert_s)
    while i < len(found_s) and j < len(expert_s):
        if abs(found_s[i] - expert_s[j]) <= tolerance_s:
            pairs, i, j = pairs + 1, i + 1, j + 1
        elif found_s[i] < expert_s[j]:
            i += 1
        else:
            j += 1
    return pairs
