"""Synthetic concentric-needle EMG with class-specific physiology, deterministic from a seed.

Model (see ``shared/docs/synthetic-emg.md``; the README's "Synthetic data" section summarises it):

- Every subject draws latent physiology once: disease severity, fibres per motor unit (myopathy loses fibres, ALS
  survivors adopt orphaned fibres), temporal dispersion of fibre potentials, units recruited at "low" effort, firing
  rates and their irregularity, fibrillation and fasciculation rates, instrument noise.
- Every record draws a new needle site and effort: each unit's nearest-fibre distance (which sets amplitude and,
  inversely, spike width), the number of active units, a possible effort step. This makes records of one subject
  differ more than subjects do, as in EMGLab N2001.
- A motor-unit action potential (MUAP) is a sum of Hermite-Rodriguez components: a main spike made of 1..K fibre
  groups (K grows with dispersion: polyphasia), a slow low-amplitude component that sets the clinical duration, and
  sometimes a late satellite. Components jitter and (in ALS) block from firing to firing.
- Signals are summed at 23,437.5 Hz, clipped to the N2001 ADC range (+/-2,500 uV) and stored as int16 at 13.107
  ADC units per uV, exactly like the real files, so both go through the same windowing and cache path.

Class differences are driven by the latent parameters, never by scaling the output per class; the calibration table
in the README compares the result with the statistics measured on N2001.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

from emg_lightning.data.records import Recording

NATIVE_RATE_HZ = 23437.5
ADC_GAIN = 13.107  # ADC units per uV, as in N2001
ADC_LIMIT_UV = 2500.0
GENERATOR_VERSION = 1  # bump when the model changes: it is part of the cache key
# The classes whose physiology the generator models; their order seeds each subject's random stream.
SYNTHETIC_CLASSES = ("normal", "als", "myopathy")

# Single-fibre peak-to-peak amplitude vs radial distance (line-source model, synthetic-emg.md section 5).
_R_MM = np.array([0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0])
_PP_UV = np.array([6750, 4470, 2520, 1140, 630, 256, 57, 9], dtype=float)
# The concentric needle averages over its recording surface and subtracts the cannula: near fields are lower.
_CN_ATTENUATION = 0.07


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate. Defaults mirror N2001's class sizes with fewer records per subject (fast on a CPU)."""

    subjects_per_class: tuple[tuple[str, int], ...] = (("normal", 9), ("als", 7), ("myopathy", 6))
    records_per_subject: tuple[int, int] = (3, 8)
    duration_s: float = 11.184
    seed: int = 0

    def __post_init__(self) -> None:
        lo, hi = self.records_per_subject
        if not 1 <= lo <= hi:
            raise ValueError(f"records_per_subject must be [min, max] with 1 <= min <= max, got {[lo, hi]}")
        if self.duration_s <= 0:
            raise ValueError(f"duration_s must be positive, got {self.duration_s}")
        for name, count in self.subjects_per_class:
            if name not in SYNTHETIC_CLASSES:
                raise ValueError(f"unknown class {name!r} in subjects_per_class; known: {list(SYNTHETIC_CLASSES)}")
            if count < 0:
                raise ValueError(f"subjects_per_class[{name}] must be >= 0, got {count}")


@dataclass(frozen=True)
class SubjectPhysiology:
    """Latent parameters drawn once per subject."""

    label: str
    severity: float
    amplitude_factor: float  # fibres near the tip per unit, relative to healthy
    width_factor: float  # main-spike width relative to healthy (fibre loss narrows, reinnervation widens)
    extra_phases: float  # mean number of extra fibre-group components (polyphasia)
    spacing_ms: tuple[float, float]  # spread of those components
    duration_ms: float  # clinical MUAP duration (slow component)
    jitter_ms: float
    blocking: float
    satellite_prob: float
    units_mean: float  # active units at the subject's usual "low" effort
    rate_hz: tuple[float, float]
    isi_cov: tuple[float, float]
    doublet_prob: float
    fibrillation_mean: float  # fibrillating fibres per record (Poisson mean)
    fasciculation_hz: float
    noise_uv: float
    effort: float


def draw_subject(label: str, rng: np.random.Generator) -> SubjectPhysiology:
    bulk = rng.lognormal(0.0, 0.15)  # muscle bulk / fibre diameter: men larger, and so on
    common = dict(
        noise_uv=rng.uniform(1.6, 3.2),
        effort=rng.lognormal(0.0, 0.25),
        doublet_prob=0.0,
        fasciculation_hz=0.0,
    )
    if label == "normal":
        return SubjectPhysiology(
            label,
            0.0,
            bulk,
            rng.lognormal(0.0, 0.1),
            0.5,
            (0.3, 1.2),
            rng.uniform(8.0, 12.0),
            0.02,
            0.0,
            0.016,
            6.0,
            (6.0, 12.0),
            (0.12, 0.25),
            fibrillation_mean=0.0,
            **common,
        )
    severity = float(rng.beta(2.0, 2.0))
    if label == "myopathy":
        inflammatory = rng.random() < 1 / 3
        fibre_loss = 0.1 + 0.5 * severity
        return SubjectPhysiology(
            label,
            severity,
            amplitude_factor=bulk * (1.0 - fibre_loss) ** 0.5 * rng.lognormal(0.0, 0.2),
            width_factor=1.0 - 0.55 * (0.3 + 0.7 * severity),
            extra_phases=1.0 + 3.0 * severity,
            spacing_ms=(0.2, 1.0),
            duration_ms=rng.uniform(5.0, 8.0),
            jitter_ms=0.04,
            blocking=0.02,
            satellite_prob=0.08,
            units_mean=7.0 * (0.9 + 0.6 * severity),
            rate_hz=(8.0, 14.0),
            isi_cov=(0.15, 0.3),
            fibrillation_mean=2.0 if inflammatory else 0.5,
            **common,
        )
    if label == "als":
        surviving_growth = 1.5 + 2.5 * severity  # surviving units adopt orphaned fibres: x1.5-4
        umn = rng.uniform(0.0, 1.0)
        return SubjectPhysiology(
            label,
            severity,
            amplitude_factor=bulk * surviving_growth**0.75,
            width_factor=1.0 + 0.5 * (0.3 + 0.7 * severity),
            extra_phases=1.0 + 3.0 * severity,
            spacing_ms=(0.5, 4.0),
            duration_ms=rng.uniform(12.0, 20.0),
            jitter_ms=0.05 + 0.1 * severity,
            blocking=0.05 + 0.25 * severity,
            satellite_prob=0.08,
            units_mean=6.0 * (1.0 - 0.65 * severity),
            rate_hz=(11.0 * (1 - 0.3 * umn), 20.0 * (1 - 0.3 * umn)),
            isi_cov=(0.2 + 0.1 * umn, 0.3 + 0.15 * umn),
            fibrillation_mean=1.5,
            **{**common, "doublet_prob": 0.01, "fasciculation_hz": rng.uniform(0.01, 0.3)},
        )
    raise ValueError(f"unknown class {label!r}; known: {list(SYNTHETIC_CLASSES)}")


# --- waveforms -------------------------------------------------------------------------------------------------


def _hermite_rodriguez(t_ms: np.ndarray, width_ms: float | np.ndarray, order: int) -> np.ndarray:
    """HR1 (biphasic) or HR2 (triphasic) function with unit peak-to-peak amplitude."""
    x = t_ms / width_ms
    g = np.exp(-(x**2))
    if order == 1:
        return x * g / 0.8578  # peak-to-peak of x*exp(-x^2) is 2/sqrt(2e)
    return (1 - 2 * x**2) * g / 1.4463  # peak-to-peak of (1-2x^2)exp(-x^2) is 1 + 2exp(-1.5)


def _single_fibre_pp(r_mm: np.ndarray | float) -> np.ndarray:
    return np.exp(np.interp(np.log(r_mm), np.log(_R_MM), np.log(_PP_UV)))


@dataclass(frozen=True)
class _Component:
    offset_ms: float
    width_ms: float
    amplitude_uv: float  # signed peak-to-peak
    order: int
    jitter_ms: float
    blocking: float


def _draw_muap(phys: SubjectPhysiology, rng: np.random.Generator) -> list[_Component]:
    """One unit's MUAP at this needle site: amplitude falls and width grows with distance to its nearest fibres."""
    r_mm = float(np.exp(rng.uniform(np.log(0.05), np.log(1.0))))
    amplitude = _CN_ATTENUATION * _single_fibre_pp(r_mm) * phys.amplitude_factor * rng.lognormal(0.0, 0.3)
    if phys.label == "myopathy" and rng.random() < 0.1:
        amplitude *= rng.uniform(1.5, 2.5)  # a hypertrophic fibre near the tip
    width = 1.4 * phys.width_factor * (0.7 + 0.6 * r_mm) * rng.lognormal(0.0, 0.15)
    polarity = 1.0 if rng.random() < 0.8 else -1.0
    parts = [_Component(0.0, width, polarity * amplitude, 2, phys.jitter_ms * 0.5, 0.0)]
    for _ in range(rng.poisson(phys.extra_phases)):
        parts.append(
            _Component(
                offset_ms=float(rng.choice([-1, 1]) * rng.uniform(*phys.spacing_ms)),
                width_ms=width * rng.uniform(0.6, 1.1),
                amplitude_uv=polarity * amplitude * rng.uniform(0.2, 0.8),
                order=2,
                jitter_ms=phys.jitter_ms,
                blocking=phys.blocking,
            )
        )
    # Initial and terminal slow phases that give the clinical duration: broad, about 12 % of the spike.
    duration = phys.duration_ms * rng.lognormal(0.0, 0.15)
    parts.append(_Component(0.0, duration / 5.0, -polarity * 0.12 * amplitude, 1, 0.0, 0.0))
    if rng.random() < phys.satellite_prob:
        parts.append(
            _Component(
                offset_ms=rng.uniform(3.0, 20.0),
                width_ms=rng.uniform(0.2, 0.5),
                amplitude_uv=polarity * amplitude * rng.uniform(0.1, 0.3),
                order=2,
                jitter_ms=rng.uniform(0.05, 0.3),
                blocking=rng.uniform(0.1, 0.5),
            )
        )
    return parts


def _fibrillation(rng: np.random.Generator) -> list[_Component]:
    amplitude = rng.uniform(20.0, 200.0)
    if rng.random() < 0.2:  # positive sharp wave: sharp positive deflection, slow negative recovery
        return [
            _Component(0.0, rng.uniform(0.15, 0.3), amplitude, 2, 0.0, 0.0),
            _Component(4.0, rng.uniform(3.0, 6.0), -0.35 * amplitude, 2, 0.0, 0.0),
        ]
    width = rng.uniform(0.15, 0.6)  # bi/triphasic spike, initial positivity, 1-5 ms in all
    return [_Component(0.0, width, -amplitude, 1, 0.002, 0.0)]


def _render(
    out: np.ndarray,
    times_s: np.ndarray,
    gains: np.ndarray,
    parts: list[_Component],
    fs: float,
    rng: np.random.Generator,
) -> None:
    """Add one waveform per firing, component by component, with sub-sample timing, jitter and blocking."""
    if len(times_s) == 0:
        return
    n = len(out)
    for part in parts:
        onset = times_s * 1e3 + part.offset_ms + part.jitter_ms * rng.standard_normal(len(times_s))
        keep = rng.random(len(times_s)) >= part.blocking
        onset, gain = onset[keep], gains[keep]
        half = int(np.ceil(4 * part.width_ms * fs / 1e3)) + 1
        centre = np.round(onset * fs / 1e3).astype(np.int64)
        idx = centre[:, None] + np.arange(-half, half + 1)[None, :]
        t_ms = idx / fs * 1e3 - onset[:, None]
        values = part.amplitude_uv * gain[:, None] * _hermite_rodriguez(t_ms, part.width_ms, part.order)
        inside = (idx >= 0) & (idx < n)
        out += np.bincount(idx[inside], weights=values[inside], minlength=n)


def _firing_times(
    rate_hz: float,
    cov: float,
    start_s: float,
    stop_s: float,
    drive: np.ndarray,
    fs_drive: float,
    doublet_prob: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Renewal process with gamma ISIs, a 20 ms refractory period and a shared slow common drive."""
    shape = 1.0 / cov**2
    times = []
    t = start_s + rng.uniform(0, 1.0 / rate_hz)
    while t < stop_s:
        times.append(t)
        if doublet_prob and rng.random() < doublet_prob:
            times.append(t + rng.uniform(0.005, 0.02))
        rate = rate_hz * drive[min(int(t * fs_drive), len(drive) - 1)]
        t += max(0.02, rng.gamma(shape, 1.0 / (shape * rate)))
    return np.asarray(times)


def _band_noise(n: int, fs: float, band: tuple[float | None, float | None], rng: np.random.Generator) -> np.ndarray:
    """Unit-variance Gaussian noise limited to a band (None = open end)."""
    white = rng.standard_normal(n)
    low, high = band
    if low and high:
        sos = sps.butter(2, [low, high], btype="bandpass", fs=fs, output="sos")
    elif low:
        sos = sps.butter(2, low, btype="highpass", fs=fs, output="sos")
    else:
        sos = sps.butter(2, high, btype="lowpass", fs=fs, output="sos")
    coloured = sps.sosfilt(sos, white)
    return coloured / (coloured.std() + 1e-12)


def generate_record(
    phys: SubjectPhysiology, duration_s: float, rng: np.random.Generator, fs: float = NATIVE_RATE_HZ
) -> np.ndarray:
    """One record in microvolts (float64), before clipping and quantisation."""
    n = int(round(duration_s * fs))
    x = np.zeros(n)
    # Slow common drive (random walk, 0.05-0.5 Hz) and, in 30 % of records, one effort step.
    fs_drive = 100.0
    n_drive = int(duration_s * fs_drive) + 1
    walk = sps.sosfilt(sps.butter(1, 0.5, fs=fs_drive, output="sos"), rng.standard_normal(n_drive))
    drive = 1.0 + 0.15 * walk / (walk.std() + 1e-12)
    effort = phys.effort * rng.lognormal(0.0, 0.3)
    n_units = max(2, rng.poisson(phys.units_mean * effort))
    step_s, step_units = None, 0
    if rng.random() < 0.3:
        step_s = rng.uniform(0.2, 0.8) * duration_s
        step_units = int(rng.integers(-n_units // 2, n_units + 1))
    # Needle wander: a slow (tau ~0.4 s) log-amplitude fluctuation per unit.
    for unit in range(n_units + max(step_units, 0)):
        parts = _draw_muap(phys, rng)
        rate = rng.uniform(*phys.rate_hz)
        start, stop = 0.0, duration_s
        if unit >= n_units:  # recruited at the step
            start = step_s
        elif step_units < 0 and unit < -step_units:  # derecruited at the step
            stop = step_s
        times = _firing_times(rate, rng.uniform(*phys.isi_cov), start, stop, drive, fs_drive, phys.doublet_prob, rng)
        wander = np.exp(0.15 * _ar1(len(times), np.exp(-1.0 / max(rate * 0.4, 1.0)), rng))
        _render(x, times, wander, parts, fs, rng)
    for _ in range(rng.poisson(phys.fibrillation_mean)):
        rate = float(np.exp(rng.uniform(np.log(0.5), np.log(15.0))))
        times = np.arange(rng.uniform(0, 1 / rate), duration_s, 1 / rate)
        times = times + 0.03 / rate * rng.standard_normal(len(times))
        _render(x, times, np.ones(len(times)), _fibrillation(rng), fs, rng)
    if phys.fasciculation_hz:
        events = rng.uniform(0, duration_s, rng.poisson(phys.fasciculation_hz * duration_s))
        for t in events:  # an extra, often complex, discharge of a unit near or away from the tip
            _render(x, np.array([t]), np.ones(1), _draw_muap(phys, rng), fs, rng)
    # Instrument and background: white floor, distant-unit activity (< 500 Hz), baseline wander (2-20 Hz).
    x += 0.6 * phys.noise_uv * _band_noise(n, fs, (None, 10_000.0), rng)
    x += 0.8 * phys.noise_uv * _band_noise(n, fs, (20.0, 500.0), rng)
    x += min(rng.lognormal(np.log(8.0), 0.8), 80.0) * _band_noise(n, fs, (2.0, 20.0), rng)
    return x


def _ar1(n: int, phi: float, rng: np.random.Generator) -> np.ndarray:
    z = np.empty(n)
    if n == 0:
        return z
    e = rng.standard_normal(n) * np.sqrt(1 - phi**2)
    z[0] = rng.standard_normal()
    for i in range(1, n):
        z[i] = phi * z[i - 1] + e[i]
    return z


def to_digital(microvolts: np.ndarray) -> np.ndarray:
    """Clip to the ADC range and quantise as N2001 does (int16, 13.107 units per uV)."""
    return np.clip(np.round(microvolts * ADC_GAIN), -32768, 32767).astype(np.int16)


@dataclass(frozen=True)
class PlannedRecord:
    """Where one generated record sits in the data set: its indices seed its random stream."""

    name: str
    subject: str
    label: str
    class_index: int
    subject_no: int
    record_no: int


def plan(spec: SyntheticSpec) -> list[PlannedRecord]:
    """Every record the spec generates, in a fixed order, without generating any signal."""
    planned = []
    for class_name, n_subjects in spec.subjects_per_class:
        class_index = SYNTHETIC_CLASSES.index(class_name)
        for subject_no in range(1, n_subjects + 1):
            subject_rng = np.random.default_rng([spec.seed, class_index, subject_no])
            draw_subject(class_name, subject_rng)  # advances the stream exactly as generating does
            n_records = int(subject_rng.integers(spec.records_per_subject[0], spec.records_per_subject[1] + 1))
            subject = f"S{class_name[0].upper()}{subject_no:02d}"
            for record_no in range(1, n_records + 1):
                name = f"SYN{subject}R{record_no:02d}"
                planned.append(PlannedRecord(name, subject, class_name, class_index, subject_no, record_no))
    return planned


def generate_record_of(spec: SyntheticSpec, planned: PlannedRecord) -> Recording:
    """One planned record. Each subject and record has its own random stream, so adding subjects or records never
    changes the ones already there."""
    phys = draw_subject(planned.label, np.random.default_rng([spec.seed, planned.class_index, planned.subject_no]))
    rng = np.random.default_rng([spec.seed, planned.class_index, planned.subject_no, planned.record_no])
    x = generate_record(phys, spec.duration_s, rng)
    return Recording(
        name=planned.name,
        subject=planned.subject,
        label=planned.label,
        sample_rate=NATIVE_RATE_HZ,
        digital=to_digital(x),
        adc_gain=ADC_GAIN,
        metadata={"severity": f"{phys.severity:.2f}", "generator_version": str(GENERATOR_VERSION)},
    )


def generate(spec: SyntheticSpec) -> Iterator[Recording]:
    """All records of the data set, in a fixed order."""
    for planned in plan(spec):
        yield generate_record_of(spec, planned)
