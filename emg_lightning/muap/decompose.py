"""Decomposition of one needle-EMG record into motor units, the way decomposition-based quantitative EMG does it
(Stashuk, "Decomposition and quantitative analysis of clinical electromyographic signals", Med. Eng. Phys. 21:389-404,
1999; McGill, Lateva & Marateb, EMGLAB, J. Neurosci. Methods 149:121-133, 2005), reduced to its robust core:

1. **Detect** discharges on a band-passed copy of the signal (``detect_band_hz``: it sharpens the spikes of fibres
   near the needle and removes the slow far-field activity): local maxima of its magnitude above ``threshold`` times
   the noise (the median absolute deviation of the band-passed signal / 0.6745, which ignores the sparse spikes),
   at least ``dead_time_ms`` apart; each discharge is timed at its peak.
2. **Group** them into units by template matching: candidates in order of decreasing amplitude join the template
   they fit best (shifted by up to ``max_shift_samples``) when the residual is below ``match`` of the template's
   energy plus the noise's, else start a new unit; templates are the running mean of their members; templates that
   fit each other as well are **merged**; every candidate is then assigned once more to the final templates.
3. **Reject** what does not fire like a motor unit: fewer than ``min_discharges`` discharges, or more than
   ``max_refractory_violations`` of its inter-discharge intervals shorter than ``refractory_ms``.
4. **Templates** of the survivors: the median of their discharges, aligned, in the clinical band (the record as
   recorded), ``template_ms`` long; the clinical parameters (``measures.py``) are measured on these.

Superimposed discharges (two units within a spike's width) are not resolved: they fit no template and are left out,
which lowers recall where units fire together (measured against the expert decompositions in ``experiments/``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.signal import butter, find_peaks, sosfiltfilt

from emg_lightning.runtime.errors import DataError


@dataclass(frozen=True)
class DecompositionSettings:
    detect_band_hz: tuple[float, float] = (1000.0, 5000.0)
    threshold: float = 5.0  # x the band-passed signal's noise (MAD / 0.6745)
    dead_time_ms: float = 1.6  # two detections closer than this are one discharge (the phases of one spike)
    shape_ms: float = 1.6  # half-width of the band-passed snippet compared between discharges
    max_shift_samples: int = 2
    match: float = 0.1  # a residual below this share of the template's energy (plus the noise's) joins it
    min_discharges: int = 10
    refractory_ms: float = 20.0
    min_interval_share: float = 0.6  # of a unit's median interval: a shorter interval holds a discharge not its own
    max_refractory_violations: float = 0.1
    template_ms: float = 50.0  # the clinical template's length, centred on the discharge times
    merge_correlation: float = 0.9  # units whose templates' spikes correlate this well ...
    merge_amplitude_ratio: float = 1.25  # ... and whose peak-to-peak amplitudes differ by less are one unit
    similar_correlation: float = 0.6  # less alike units of that amplitude are one when their firings interleave

    @property
    def min_rate_hz(self) -> float:
        """The lowest sampling rate the detector works at: its band's upper edge must lie below Nyquist."""
        return 2.2 * self.detect_band_hz[1]


@dataclass
class MotorUnit:
    discharges: np.ndarray  # sample indices of the discharges (peak of the band-passed spike)
    template_uv: np.ndarray  # median discharge in the clinical band, template_ms long
    centre: int  # the template's sample aligned with the discharge times
    shape: np.ndarray  # the band-passed template (what discharges were matched against)
    snippets_uv: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0)))  # its aligned discharges


@dataclass
class Decomposition:
    units: list[MotorUnit]
    rate_hz: float
    noise_uv: float  # the band-passed signal's noise
    threshold_uv: float
    candidates: int  # detected discharges, assigned or not
    explained_energy: float  # share of the band-passed signal's energy the units' templates explain


MIN_MEMBERS = 2  # a first-pass group with fewer candidates is no template (its candidates are reassigned)


def bandpass(signal_uv: np.ndarray, rate_hz: float, band_hz: tuple[float, float]) -> np.ndarray:
    sos = butter(2, band_hz, btype="bandpass", fs=rate_hz, output="sos")
    return sosfiltfilt(sos, signal_uv)


def robust_noise(x: np.ndarray) -> float:
    return float(np.median(np.abs(x - np.median(x))) / 0.6745)


def detect(filtered: np.ndarray, rate_hz: float, settings: DecompositionSettings) -> tuple[np.ndarray, float]:
    """Peak samples of the band-passed signal's magnitude above the threshold, and the noise level."""
    noise = robust_noise(filtered)
    if noise <= 0:
        return np.zeros(0, dtype=int), 0.0
    distance = max(1, int(round(settings.dead_time_ms * 1e-3 * rate_hz)))
    peaks, _ = find_peaks(np.abs(filtered), height=settings.threshold * noise, distance=distance)
    return peaks, noise


def snippets(x: np.ndarray, centres: np.ndarray, half: int) -> np.ndarray:
    """Rows ``x[c - half : c + half + 1]``, zero-padded at the record's ends."""
    padded = np.pad(x, half)
    index = centres[:, None] + np.arange(2 * half + 1)[None, :]
    return padded[index]


def decompose(
    signal_uv: np.ndarray,
    rate_hz: float,
    settings: DecompositionSettings | None = None,
    excluded: np.ndarray | None = None,
) -> Decomposition:
    """The motor units of one record (``signal_uv``: its samples in µV at ``rate_hz``, as recorded). ``excluded``:
    samples (True) where nothing is detected and whose energy the yield leaves out (a saturated stretch)."""
    settings = settings or DecompositionSettings()
    if rate_hz < settings.min_rate_hz:
        raise DataError(
            f"recorded at {rate_hz:g} Hz: motor-unit detection needs at least {settings.min_rate_hz:g} Hz (its "
            f"{settings.detect_band_hz[0]:g}-{settings.detect_band_hz[1]:g} Hz detection band must lie below Nyquist)"
        )
    signal_uv = np.asarray(signal_uv, dtype=np.float64)
    signal_uv = signal_uv - np.median(signal_uv)  # the templates' offset: the record's, not a unit's
    filtered = bandpass(signal_uv, rate_hz, settings.detect_band_hz)
    peaks, noise = detect(filtered, rate_hz, settings)
    if excluded is not None:
        peaks = peaks[~excluded[peaks]]
    half = int(round(settings.shape_ms * 1e-3 * rate_hz))
    shift = settings.max_shift_samples
    shapes = snippets(filtered, peaks, half + shift)
    labels = _group(shapes, noise, half, shift, settings.match)
    labels, shapes_of, residuals = _merge_and_reassign(shapes, labels, noise, half, shift, settings.match)
    units, template_half = [], int(round(settings.template_ms / 2 * 1e-3 * rate_hz))
    for label in sorted(shapes_of):
        members = np.flatnonzero(labels == label)
        gap = settings.refractory_ms * 1e-3 * rate_hz
        if len(members) > 2:  # a steadily firing unit: nothing far inside its usual interval is its own
            gap = max(gap, settings.min_interval_share * float(np.median(np.diff(np.sort(peaks[members])))))
        discharges = peaks[_drop_refractory_violations(members, peaks, residuals, gap)]
        template, raw = clinical_template(signal_uv, discharges, template_half, robust=False)
        # time each discharge at its MUAP's main peak in the clinical band (EMGLAB's convention), not at the
        # band-passed spike's, which can lie a phase earlier or later
        offset = int(np.argmax(np.abs(template))) - template_half
        if offset:
            discharges = np.clip(discharges + offset, 0, len(signal_uv) - 1)
            template, raw = clinical_template(signal_uv, discharges, template_half, robust=False)
        units.append(MotorUnit(discharges, template, template_half, shapes_of[label], raw))
    # one unit found as several is merged before any is judged on its firing
    units = merge_alike(units, signal_uv, rate_hz, settings)
    units = [refine_timing(u, signal_uv, filtered, half, settings, rate_hz) for u in units]
    units = [u for u in units if _fires_like_a_unit(u.discharges, rate_hz, settings)]
    units.sort(key=lambda u: -float(np.ptp(u.shape)))  # largest first, as clinicians list them
    placed = [(u.discharges, u.shape) for u in units]
    return Decomposition(units, rate_hz, noise, settings.threshold * noise, len(peaks),
                         explained_energy(filtered, placed, half, excluded))  # fmt: skip


def clinical_template(
    signal_uv: np.ndarray, discharges: np.ndarray, half: int, robust: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The median (``robust``; else the mean, cheaper, for interim decisions) of the record's snippets at
    ``discharges`` (``2 * half + 1`` samples each; ``signal_uv`` centred on its median) with its baseline (the
    median of its outer tenths) removed, and the snippets."""
    raw = snippets(signal_uv, discharges, half)
    template = np.median(raw, axis=0) if robust else raw.mean(axis=0)
    edge = max(1, half // 5)
    return template - np.median(np.concatenate([template[:edge], template[-edge:]])), raw


def merge_alike(
    units: list[MotorUnit], signal_uv: np.ndarray, rate_hz: float, settings: DecompositionSettings
) -> list[MotorUnit]:
    """One unit found as several, merged (discharges closer than the dead time kept once, the template recomputed):
    units sharing half the smaller one's discharges (one spike detected at two phases: two units do not fire together
    again and again); units of similar templates (``similar_correlation``) whose trains fire as one
    (``fire_as_one``: one unit split by its variable shape); and units whose clinical templates, timed at their main
    peaks, have spikes (the templates in the detection band: not the slow far field that distant units share)
    correlating by ``merge_correlation`` or more with amplitudes within ``merge_amplitude_ratio``."""
    dead = max(1, int(round(settings.dead_time_ms * 1e-3 * rate_hz)))
    units = list(units)

    reach = int(round(settings.shape_ms * 1e-3 * rate_hz))

    def spike_of(unit: MotorUnit) -> np.ndarray:  # the template's spike (detection band, around the discharge),
        x = bandpass(unit.template_uv, rate_hz, settings.detect_band_hz)[unit.centre - reach : unit.centre + reach]
        x = x - x.mean()  # scaled so that the dot product of two is their correlation
        return x / max(float(np.sqrt((x**2).sum())), 1e-12)

    spike = [spike_of(u) for u in units]
    merged = True
    while merged:
        merged = False
        for i in range(len(units)):
            for j in range(i + 1, len(units)):
                a, b = units[i].template_uv, units[j].template_uv
                ratio = np.ptp(a) / max(np.ptp(b), 1e-9)
                spikes = float(spike[i] @ spike[j])
                alike = 1 / settings.merge_amplitude_ratio <= ratio <= settings.merge_amplitude_ratio and (
                    spikes >= settings.merge_correlation
                )
                similar = 1 / settings.merge_amplitude_ratio <= ratio <= settings.merge_amplitude_ratio and (
                    spikes >= settings.similar_correlation
                )
                if (
                    alike
                    or shared_share(units[i].discharges, units[j].discharges, dead) >= 0.5
                    or (similar and fire_as_one(units[i].discharges, units[j].discharges, rate_hz, settings))
                ):
                    both = np.sort(np.concatenate([units[i].discharges, units[j].discharges]))
                    keep = np.concatenate([[True], np.diff(both) >= dead])
                    template, raw = clinical_template(signal_uv, both[keep], units[i].centre, robust=False)
                    units[i] = MotorUnit(both[keep], template, units[i].centre, units[i].shape, raw)
                    spike[i] = spike_of(units[i])
                    del units[j], spike[j]
                    merged = True
                    break
            if merged:
                break
    return units


def fire_as_one(a: np.ndarray, b: np.ndarray, rate_hz: float, settings: DecompositionSettings) -> bool:
    """Whether two discharge trains are one motor unit's, split: together they fire at least as regularly as each
    alone (the coefficient of variation of the intervals; two independent units interleave irregularly, the halves
    of one unit's train are each irregular and regular together), with no more than ``max_refractory_violations``
    of the joint intervals shorter than the refractory time."""
    joint = np.sort(np.concatenate([a, b]))
    if len(joint) < 3:
        return False
    intervals = np.diff(joint)
    if np.mean(intervals < settings.refractory_ms * 1e-3 * rate_hz) > settings.max_refractory_violations:
        return False
    return interval_cov(joint) <= max(interval_cov(a), interval_cov(b))


def interval_cov(discharges: np.ndarray) -> float:
    """SD / mean of a train's intervals (infinite for fewer than three discharges: no regularity to keep)."""
    intervals = np.diff(np.sort(discharges))
    return float(intervals.std() / intervals.mean()) if len(intervals) > 1 and intervals.mean() > 0 else np.inf


def refine_timing(
    unit: MotorUnit,
    signal_uv: np.ndarray,
    filtered: np.ndarray,
    half: int,
    settings: DecompositionSettings,
    rate_hz: float,
) -> MotorUnit:
    """Each discharge re-timed to where the band-passed signal best matches the unit's band-passed template
    (within the dead time either side): a discharge detected on a neighbouring phase, or displaced by a
    superimposed spike, is put back on the unit's own time; then the clinical template once more."""
    reach = max(1, int(round(settings.dead_time_ms * 1e-3 * rate_hz)))
    shape = np.median(snippets(filtered, unit.discharges, half), axis=0)
    wide = snippets(filtered, unit.discharges, half + reach)
    scores = np.stack([wide[:, reach + s : reach + s + 2 * half + 1] @ shape for s in range(-reach, reach + 1)])
    discharges = unit.discharges + scores.argmax(axis=0) - reach
    discharges = np.unique(np.clip(discharges, 0, len(signal_uv) - 1))
    keep = np.concatenate([[True], np.diff(discharges) >= reach]) if len(discharges) else np.zeros(0, bool)
    template, raw = clinical_template(signal_uv, discharges[keep], unit.centre)
    return MotorUnit(discharges[keep], template, unit.centre, shape, raw)


def shared_share(a: np.ndarray, b: np.ndarray, tolerance: int) -> float:
    """Share of the smaller unit's discharges that lie within ``tolerance`` samples of one of the other's."""
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    if len(small) == 0:
        return 0.0
    return float(np.mean(nearest_distance(small, large) <= tolerance))


def nearest_distance(times: np.ndarray, to: np.ndarray) -> np.ndarray:
    """For each of ``times``, the distance to the nearest of ``to`` (infinite when ``to`` is empty)."""
    if len(to) == 0:
        return np.full(len(times), np.inf)
    to = np.sort(to)
    after = np.clip(np.searchsorted(to, times), 0, len(to) - 1)
    before = np.clip(after - 1, 0, len(to) - 1)
    return np.minimum(np.abs(to[after] - times), np.abs(to[before] - times))


def _residuals(rows: np.ndarray, templates: np.ndarray, half: int, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """For each row (2 * (half + shift) + 1 samples) and each template (2 * half + 1 samples), the smallest residual
    energy over shifts of up to ``shift`` samples, and that shift: two (rows, templates) arrays."""
    energy = (templates**2).sum(axis=1)
    best = np.full((len(rows), len(templates)), np.inf)
    best_shift = np.zeros(best.shape, dtype=int)
    for s in range(-shift, shift + 1):
        window = rows[:, shift + s : shift + s + 2 * half + 1]
        residual = (window**2).sum(axis=1)[:, None] - 2 * window @ templates.T + energy[None, :]
        better = residual < best
        best[better], best_shift[better] = residual[better], s
    return best, best_shift


def _tolerance(templates: np.ndarray, noise: float, match: float) -> np.ndarray:
    """The largest residual each template accepts: ``match`` of its energy plus the noise's."""
    return match * (templates**2).sum(axis=1) + 2.0 * templates.shape[1] * noise**2


def _group(shapes: np.ndarray, noise: float, half: int, shift: int, match: float) -> np.ndarray:
    """Candidates in order of decreasing amplitude join the best-fitting template that accepts them (the template
    becomes their running mean), or start a new one."""
    centre = shapes[:, shift : shift + 2 * half + 1]
    templates = np.zeros((0, 2 * half + 1))
    counts: list[int] = []
    labels = np.full(len(shapes), -1)
    for i in np.argsort(-np.abs(centre).max(axis=1)):
        row = shapes[i : i + 1]
        if len(templates):
            residual, shifts = _residuals(row, templates, half, shift)
            residual = np.where(residual[0] <= _tolerance(templates, noise, match), residual[0], np.inf)
            label = int(residual.argmin())
        if not len(templates) or not np.isfinite(residual[label]):
            templates = np.vstack([templates, centre[i]])
            counts.append(1)
            labels[i] = len(templates) - 1
            continue
        s = int(shifts[0, label])
        counts[label] += 1
        templates[label] += (row[0, shift + s : shift + s + 2 * half + 1] - templates[label]) / counts[label]
        labels[i] = label
    return labels


def _merge_and_reassign(
    shapes: np.ndarray, labels: np.ndarray, noise: float, half: int, shift: int, match: float
) -> tuple[np.ndarray, dict[int, np.ndarray], np.ndarray]:
    """Merge the templates (of at least ``MIN_MEMBERS`` candidates) that fit each other, then assign every
    candidate to its best final template (or none). Returns each candidate's unit (-1: none), the templates, and
    each candidate's residual against its unit."""
    centre = shapes[:, shift : shift + 2 * half + 1]
    keys = [int(k) for k in np.unique(labels) if k >= 0 and np.count_nonzero(labels == k) >= MIN_MEMBERS]
    if not keys:
        return np.full(len(shapes), -1), {}, np.full(len(shapes), np.inf)
    medians = np.stack([np.median(centre[labels == k], axis=0) for k in keys])
    residual, _ = _residuals(np.pad(medians, ((0, 0), (shift, shift))), medians, half, shift)
    energy = (medians**2).sum(axis=1)
    parent = list(range(len(keys)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(residual <= match * np.minimum(energy[:, None], energy[None, :]))):
        if i < j:
            parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(root(i), []).append(k)
    templates = np.stack([np.median(centre[np.isin(labels, members)], axis=0) for members in groups.values()])
    fits, _ = _residuals(shapes, templates, half, shift)
    fits = np.where(fits <= _tolerance(templates, noise, match)[None, :], fits, np.inf)
    best = fits.argmin(axis=1)
    best_fit = fits[np.arange(len(shapes)), best]
    final = np.where(np.isfinite(best_fit), best, -1)
    return final, {k: templates[k] for k in range(len(templates)) if (final == k).any()}, best_fit


def _drop_refractory_violations(
    members: np.ndarray, peaks: np.ndarray, residuals: np.ndarray, min_gap: float
) -> np.ndarray:
    """A motor unit cannot fire twice within its refractory time: of two discharges closer than ``min_gap``
    samples, the one fitting the template worse is dropped (it is another unit's, or a superposition)."""
    kept: list[int] = []
    for m in members[np.argsort(peaks[members])]:
        if kept and peaks[m] - peaks[kept[-1]] < min_gap:
            if residuals[m] < residuals[kept[-1]]:
                kept[-1] = m
            continue
        kept.append(m)
    return np.array(kept, dtype=int)


def _fires_like_a_unit(discharges: np.ndarray, rate_hz: float, settings: DecompositionSettings) -> bool:
    if len(discharges) < settings.min_discharges:
        return False
    intervals_ms = np.diff(np.sort(discharges)) / rate_hz * 1e3
    return bool(np.mean(intervals_ms < settings.refractory_ms) <= settings.max_refractory_violations)


def explained_energy(
    filtered: np.ndarray, placed: list[tuple[np.ndarray, np.ndarray]], half: int, excluded: np.ndarray | None = None
) -> float:
    """Share of the band-passed signal's energy (outside ``excluded`` samples) that the units' band-passed
    templates, placed at their discharges, account for (the decomposition's yield: low in interference patterns
    where most spikes overlap)."""
    kept = np.ones(len(filtered), bool) if excluded is None else ~excluded
    total = float((filtered[kept] ** 2).sum())
    if total == 0:
        return 0.0
    model = np.zeros(len(filtered) + 2 * half)
    for discharges, shape in placed:
        for d in discharges:
            model[d : d + 2 * half + 1] += shape
    model = model[half : half + len(filtered)]
    residual = float(((filtered - model)[kept] ** 2).sum())
    return max(0.0, 1.0 - residual / total)
