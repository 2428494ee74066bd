"""Pooled sources: two folders of different rates and gains read as one data set, namespaced, on one gain."""

import numpy as np
import pytest

from emg_lightning.data.readers import SourceOptions, get_source
from emg_lightning.data.readers.pooled import parts_of
from emg_lightning.runtime.errors import ConfigError

from conftest import write_record

POOLED = get_source("pooled")


@pytest.fixture
def two_clinics(tmp_path):
    """Clinic a: 4 kHz, 10 ADC units/uV; clinic b: 8 kHz, 2 units/uV; both have a patient P1 (two different people)."""
    rng = np.random.default_rng(0)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    signal_a = np.round(rng.standard_normal(8000) * 400).astype(np.int16)
    signal_a[:5] = -32768  # saturated at clinic a's ADC limit
    write_record(a, "P1_C_1", signal_a, 4000.0, 10.0, "uV")
    write_record(a, "P2_A_1", np.round(rng.standard_normal(8000) * 400).astype(np.int16), 4000.0, 10.0, "uV")
    write_record(b, "P1_A_1", np.round(rng.standard_normal(16000) * 80).astype(np.int16), 8000.0, 2.0, "uV")
    pattern = r"(?P<subject>P\d)_(?P<label>[AC])_\d"
    parts = (
        {"name": "a", "source": "wfdb", "root": str(a), "pattern": pattern, "label_map": {"A": "als", "C": "normal"}},
        {"name": "b", "source": "wfdb", "root": str(b), "pattern": pattern, "label_map": {"A": "neuropathy"}},
    )
    return SourceOptions(sources=parts), signal_a


def test_records_and_subjects_are_namespaced_by_part(two_clinics):
    options, _ = two_clinics
    entries = {e.name: e for e in POOLED.records(options)}
    assert {n: (e.subject, e.label, e.metadata["part"]) for n, e in entries.items()} == {
        "a:P1_C_1": ("a:P1", "normal", "a"),
        "a:P2_A_1": ("a:P2", "als", "a"),
        "b:P1_A_1": ("b:P1", "neuropathy", "b"),  # clinic b's P1 is not clinic a's P1
    }


def test_samples_keep_their_microvolts_on_the_coarsest_gain_and_saturation_stays_at_the_limits(two_clinics):
    options, signal_a = two_clinics
    entries = {e.name: e for e in POOLED.records(options)}
    record = POOLED.read(entries["a:P1_C_1"], options)
    assert record.adc_gain == 2.0 and record.sample_rate == 4000.0
    uv = record.digital.astype(float) / 2.0
    original_uv = signal_a.astype(float) / 10.0
    assert np.abs(uv[5:] - original_uv[5:]).max() <= 0.25  # within half a step of the coarser gain
    assert (record.digital[:5] == -32768).all()  # still at the ADC limit: the saturation rule sees it


@pytest.mark.parametrize(
    "sources, message",
    [
        ((), "needs data.sources: a list of two or more"),
        (({"source": "wfdb"},), "two or more"),
        (({"source": "wfdb", "rot": "x"}, {"source": "emglab"}), r"takes only .* \(not \['rot'\]\)"),
        (({"source": "wfdb"}, {"source": "wfdb"}), "names wfdb twice"),
        (({"source": "pooled"}, {"source": "wfdb"}), "is itself pooled"),
        (({"source": "hospital"}, {"source": "wfdb"}), "data.source='hospital' is unknown"),
        (({"source": "wfdb", "name": "a:b"}, {"source": "emglab"}), "without ':'"),
    ],
)
def test_pooled_settings_that_cannot_mean_anything_are_refused(sources, message):
    with pytest.raises(ConfigError, match=message):
        parts_of(SourceOptions(sources=sources))


def test_a_pooled_data_module_trains_on_both_parts(two_clinics, tmp_path):
    from emg_lightning.data.datamodule import EMGDataModule

    options, _ = two_clinics
    dm = EMGDataModule.from_config(
        {"source": "pooled", "sources": list(options.sources), "sample_rate": 2000.0, "window_s": 0.5},
        split={"val_subjects_per_class": 0},
        cache_dir=str(tmp_path / "cache"),
    )
    assert dm.classes == ["als", "neuropathy", "normal"]
    assert dm.load_table().sample_rate == 2000.0 and dm.load_table().adc_gain == 2.0
    with pytest.raises(ConfigError, match="data.sources lists sources to read together: it needs data.source=pooled"):
        EMGDataModule.from_config({"source": "wfdb", "sources": list(options.sources)})
