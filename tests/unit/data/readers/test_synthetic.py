"""The embedded generator: deterministic, physiologically ordered, separable but overlapping."""

import numpy as np
import pytest

from emg_lightning.data.readers.synthetic import ADC_GAIN, NATIVE_RATE_HZ, SyntheticSpec, generate
from emg_lightning.data.readers.synthetic.signal_stats import record_statistics, roc_auc

SMALL = SyntheticSpec(
    subjects_per_class=(("normal", 5), ("als", 5), ("myopathy", 5)), records_per_subject=(3, 3), duration_s=4.0, seed=7
)


@pytest.fixture(scope="module")
def records():
    return list(generate(SMALL))


@pytest.fixture(scope="module")
def stats(records):
    return [(r.label, r.subject, record_statistics(r.microvolts, r.sample_rate)) for r in records]


def test_generator_is_deterministic_from_its_seed():
    spec = SyntheticSpec(
        subjects_per_class=(("als", 1), ("myopathy", 1)), records_per_subject=(2, 2), duration_s=1.5, seed=3
    )
    first, second = list(generate(spec)), list(generate(spec))
    assert [r.name for r in first] == [r.name for r in second]
    assert all(np.array_equal(a.digital, b.digital) for a, b in zip(first, second))
    other = list(generate(SyntheticSpec(**{**spec.__dict__, "seed": 4})))
    assert not np.array_equal(first[0].digital, other[0].digital)


def test_adding_subjects_keeps_existing_ones():
    small = {r.name: r.digital for r in generate(SyntheticSpec((("normal", 1),), (2, 2), 1.5, 0))}
    large = {r.name: r.digital for r in generate(SyntheticSpec((("normal", 2),), (2, 2), 1.5, 0))}
    assert all(np.array_equal(small[k], large[k]) for k in small)


def test_records_look_like_n2001_files(records):
    r = records[0]
    assert r.sample_rate == NATIVE_RATE_HZ and r.adc_gain == ADC_GAIN
    assert r.digital.dtype == np.int16 and len(r.digital) == int(round(4.0 * NATIVE_RATE_HZ))
    assert {x.label for x in records} == {"normal", "als", "myopathy"}
    assert len({x.subject for x in records}) == 15


def _values(stats, label, key):
    return np.array([s[key] for lab, _, s in stats if lab == label])


def test_class_physiology_orders_as_in_n2001(stats):
    med = lambda label, key: np.median(_values(stats, label, key))  # noqa: E731
    # ALS: large potentials; myopathy: narrow spikes and high-frequency power; control in between.
    assert med("als", "hf_sd_uv") > 1.8 * med("normal", "hf_sd_uv")
    assert med("als", "largest_spike_uv") > 1.8 * med("normal", "largest_spike_uv")
    assert med("myopathy", "half_width_ms") < 0.8 * med("normal", "half_width_ms") < med("als", "half_width_ms")
    assert med("myopathy", "power_above_500hz") > 2 * med("normal", "power_above_500hz")
    assert med("myopathy", "spikes_per_s") > med("normal", "spikes_per_s")
    # N2001 calibration (synthetic-emg.md 1.3): control raw SD 28 uV, myopathy 25, ALS 70 -- within a factor 2
    for label, target in (("normal", 28), ("myopathy", 25), ("als", 70)):
        assert target / 2 < med(label, "raw_sd_uv") < target * 2


def test_classes_are_separable_but_overlap(stats):
    """Single features separate partially (as in N2001), never perfectly."""
    auc_als = roc_auc(_values(stats, "als", "hf_sd_uv"), _values(stats, "normal", "hf_sd_uv"))
    auc_myo_width = roc_auc(-_values(stats, "myopathy", "half_width_ms"), -_values(stats, "normal", "half_width_ms"))
    auc_myo_rms = roc_auc(_values(stats, "myopathy", "hf_sd_uv"), _values(stats, "normal", "hf_sd_uv"))
    assert 0.75 < auc_als < 1.0
    assert 0.7 < auc_myo_width < 1.0
    assert 0.25 < auc_myo_rms < 0.75  # amplitude is no myopathy cue (N2001: 0.49)


def test_records_of_a_subject_vary_more_than_subjects(stats):
    """Needle site and effort per record: within-subject spread of log HF SD is at least the between-subject one."""
    within, between = [], []
    for label in ("normal", "als", "myopathy"):
        subjects = sorted({s for lab, s, _ in stats if lab == label})
        means = []
        for subject in subjects:
            v = np.log([st["hf_sd_uv"] for lab, s, st in stats if s == subject])
            within.append(v.var(ddof=1))
            means.append(v.mean())
        between.append(np.var(means, ddof=1))
    assert np.mean(within) > 0.5 * np.mean(between)


def test_bad_spec_is_refused():
    with pytest.raises(ValueError, match="records_per_subject"):
        SyntheticSpec(records_per_subject=(5, 2))
    with pytest.raises(ValueError, match="unknown class 'healthy'"):
        SyntheticSpec(subjects_per_class=(("healthy", 2),))


@pytest.mark.parametrize(
    "settings",
    [
        {"subjects_per_class": "normal:2"},  # a string where a mapping belongs (the command line's easy slip)
        {"subjects_per_class": {"normal": "two"}},
        {"records_per_subject": 3},
        {"records_per_subject": ["a", 2]},
    ],
)
def test_generator_settings_of_the_wrong_shape_are_one_config_error(settings):
    from emg_lightning.data.readers.synthetic.source import spec_from_settings
    from emg_lightning.runtime.errors import ConfigError

    with pytest.raises(ConfigError, match=r"data.synthetic.subjects_per_class must map classes to counts"):
        spec_from_settings(settings)
