"""Generic WFDB folders (pattern or manifest labels), band-pass, robust scaling, and the emg-data summary."""

import re

import numpy as np
import pytest

from emg_lightning.data.cache import build_table
from emg_lightning.data.datamodule import EMGDataModule
from emg_lightning.data.readers import wfdb_dir
from emg_lightning.data.records import Recording
from emg_lightning.data.windows import WindowSettings, window_record
from emg_lightning.runtime.errors import ConfigError, DataError

from conftest import write_wfdb

# the subject id keeps its class letter: A1 and C1 are different people
PATTERN = r"(?P<subject>(?P<label>[ACM])\d+)_\d+"
LABELS = {"A": "als", "C": "normal", "M": "myopathy"}


@pytest.fixture
def wfdb_folder(tmp_path):
    for i, code in enumerate("ACMACM"):
        write_wfdb(tmp_path, f"{code}{i // 3 + 1}_{i}", seed=i, saturate=i == 0)
    return tmp_path


def test_pattern_labels_and_digital_samples(wfdb_folder):
    labelled = wfdb_dir.label_records(wfdb_dir.list_headers(wfdb_folder), PATTERN, None)
    assert [(h.stem, s, label) for h, s, label in labelled][:2] == [("A1_0", "A1", "A"), ("A2_3", "A2", "A")]
    record = wfdb_dir.read_record(labelled[0][0], "A1", "als")
    assert record.digital.dtype == np.int16 and record.digital[0] == -32768  # saturation kept, never NaN
    assert record.adc_gain == 10.0 and record.sample_rate == 4000 and record.metadata["muscle"] == "biceps"


def test_physical_units_from_the_header(tmp_path):
    d = write_wfdb(tmp_path, "A1_0", unit="mV")  # gain 10 ADC units per mV = 0.01 per uV
    record = wfdb_dir.read_record(tmp_path / "A1_0.hea", "1", "als")
    assert record.adc_gain == pytest.approx(0.01)
    assert record.microvolts[5] == pytest.approx(d[5] * 100.0)
    write_wfdb(tmp_path, "A1_1", unit="degC")
    with pytest.raises(DataError, match="A1_1.hea: signal unit 'degC' is not a voltage"):
        wfdb_dir.read_record(tmp_path / "A1_1.hea", "1", "als")


def test_manifest_labels(wfdb_folder):
    manifest = wfdb_folder / "labels.csv"
    manifest.write_text("record,subject,label\nA1_0,P1,als\nC1_1,P2,normal\n")
    labelled = wfdb_dir.label_records(wfdb_dir.list_headers(wfdb_folder), None, str(manifest))
    assert [(h.stem, s, label) for h, s, label in labelled] == [("A1_0", "P1", "als"), ("C1_1", "P2", "normal")]


@pytest.mark.parametrize(
    "content, message",
    [
        ("rec;subj;lab\n", "needs a header row with the columns record, subject, label"),
        ("record,subject,label\nA1_0,P1,\n", "line 2: record, subject and label must all be given"),
        ("record,subject,label\nZZ_9,P1,als\n", "names records absent from the folder: ['ZZ_9']"),
        (b"\xff\xfe\x00bad", "cannot be read"),
    ],
)
def test_unreadable_or_wrong_manifest(wfdb_folder, content, message):
    manifest = wfdb_folder / "labels.csv"
    manifest.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError, match="manifest .*labels.csv.*" + re.escape(message)):
        wfdb_dir.label_records(wfdb_dir.list_headers(wfdb_folder), None, str(manifest))
    with pytest.raises(DataError, match="missing.csv cannot be read .*No such file"):
        wfdb_dir.read_manifest(wfdb_folder / "missing.csv")


def test_pattern_problems_name_the_record_or_setting(wfdb_folder):
    headers = wfdb_dir.list_headers(wfdb_folder)
    with pytest.raises(DataError, match="needs the named groups"):
        wfdb_dir.label_records(headers, r"(\w)(\d+)_\d+", None)
    with pytest.raises(DataError, match="needs labels: set data.pattern"):
        wfdb_dir.label_records(headers, None, None)
    write_wfdb(wfdb_folder, "other", seed=9)
    with pytest.raises(DataError, match="other.hea: record name 'other' does not match data.pattern"):
        wfdb_dir.label_records(wfdb_dir.list_headers(wfdb_folder), PATTERN, None)


def test_truncated_wfdb_data_file(wfdb_folder):
    (wfdb_folder / "C1_1.dat").write_bytes(b"\x00" * 100)
    with pytest.raises(DataError, match="C1_1.dat: .*truncated"):
        wfdb_dir.read_record(wfdb_folder / "C1_1.hea", "1", "normal")


def test_mixed_rates_are_resampled_when_a_target_rate_is_set(wfdb_folder):
    write_wfdb(wfdb_folder, "M9_9", fs=8000, seed=5)
    labelled = wfdb_dir.label_records(wfdb_dir.list_headers(wfdb_folder), PATTERN, None)
    records = [wfdb_dir.read_record(*item) for item in labelled]
    with pytest.raises(DataError, match="set data.sample_rate"):
        build_table(iter(records), WindowSettings())
    table = build_table(iter(records), WindowSettings(sample_rate=2000))
    assert table.windows.shape[1] == 2000 and table.sample_rate == 2000


def test_wfdb_folder_trains_through_the_datamodule(wfdb_folder, tmp_path):
    dm = EMGDataModule.from_config(
        {
            "source": "wfdb",
            "root": str(wfdb_folder),
            "pattern": PATTERN,
            "label_map": LABELS,
            "window_s": 0.5,
            "fold": 1,
        },
        split={"val_subjects_per_class": 0},
        cache_dir=str(tmp_path / "cache"),
    )
    dm.setup()
    assert dm.subjects == ["A1", "A2", "C1", "C2", "M1", "M2"] and dm.fold.test == ("A2",)
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape[1:] == (1, 2000) and set(batch["y"].tolist()) <= {0, 1, 2}


def test_bandpass_removes_out_of_band_power():
    fs = 8000.0
    t = np.arange(int(2 * fs)) / fs
    x = 300 * np.sin(2 * np.pi * 5 * t) + 100 * np.sin(2 * np.pi * 300 * t)  # wander + in-band activity
    record = Recording("r", "s", "normal", fs, np.round(x * 10).astype(np.int16), 10.0)
    w = window_record(record, WindowSettings(bandpass_hz=(20.0, 1000.0))).windows / 10.0
    assert 60 < w[:, 2000:6000].std() * np.sqrt(2) < 110  # the 300 Hz tone stays, the 5 Hz wander is gone
    with pytest.raises(ConfigError, match="data.bandpass_hz"):
        WindowSettings(bandpass_hz=(100.0, 50.0))


def test_robust_scale_is_fitted_on_training_subjects_only(tmp_path):
    spec = {"subjects_per_class": {"normal": 2, "als": 2}, "records_per_subject": [1, 1], "duration_s": 2.0}
    data = dict(synthetic=spec, classes=["normal", "als"], sample_rate=2343.75)
    common = dict(split={"val_subjects_per_class": 0}, cache_dir=str(tmp_path))
    scales = {}
    for fold in range(4):
        dm = EMGDataModule.from_config({**data, "normalization": "robust", "fold": fold}, **common)
        dm.setup()
        scales[dm.fold.test] = dm.robust_scale_uv
        x = next(iter(dm.test_dataloader()))["x"]
        raw = EMGDataModule.from_config({**data, "normalization": "none", "fold": fold}, **common)
        raw.setup()
        assert np.allclose(
            x.numpy() * dm.robust_scale_uv, next(iter(raw.test_dataloader()))["x"].numpy(), rtol=1e-4, atol=1e-3
        )
    assert len(set(scales.values())) == 4  # each fold's scale comes from its own training subjects
