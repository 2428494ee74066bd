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


def write_physical(folder, name, uv, gain_per_unit, unit, baseline, fmt="16", bits=16):
    """Microvolts ``uv`` written as WFDB's physical model says: digital = round(physical x gain) + baseline."""
    import wfdb

    per_uv = gain_per_unit * {"uV": 1.0, "mV": 1e-3}[unit]
    limit = 2 ** (bits - 1)
    digital = np.clip(np.round(uv * per_uv + baseline), -limit, limit - 1).astype(np.int64)
    wfdb.wrsamp(
        name, fs=4000, units=[unit], sig_name=["emg"], d_signal=digital[:, None], fmt=[fmt], adc_gain=[gain_per_unit],
        baseline=[baseline], write_dir=str(folder),
    )  # fmt: skip
    return folder / f"{name}.hea"


def test_the_same_physical_signal_gives_the_same_windows_whatever_the_header(tmp_path):
    t = np.arange(8000) / 4000
    uv = 300 * np.sin(2 * np.pi * 37 * t) + np.random.default_rng(0).normal(0, 20, len(t))
    settings = WindowSettings(window_s=0.5)
    variants = {  # (gain, unit, baseline): the same microvolts stored three ways
        "plain": (10.0, "uV", 0),
        "millivolt_offset": (10000.0, "mV", 500),  # 10 units per uV, written per mV, baseline +500
        "coarse_negative": (2.5, "uV", -300),
    }
    windows = {}
    for name, (gain, unit, baseline) in variants.items():
        record = wfdb_dir.read_record(write_physical(tmp_path, name, uv, gain, unit, baseline), "S1", "normal")
        np.testing.assert_allclose(record.microvolts, uv, atol=0.5 / record.adc_gain + 1e-3)  # the quantisation step
        kept = window_record(record, settings)
        windows[name] = kept.windows.astype(np.float64) / record.adc_gain
    for name in ("millivolt_offset", "coarse_negative"):
        assert windows[name].shape == windows["plain"].shape
        np.testing.assert_allclose(windows[name], windows["plain"], atol=0.3)


def test_an_adc_of_fewer_bits_clips_at_its_own_limits(tmp_path):
    uv = np.concatenate([np.full(400, 5000.0), np.zeros(7600)])  # 5 mV into a 12-bit ADC at 1 unit per uV: clipped
    record = wfdb_dir.read_record(write_physical(tmp_path, "r12", uv, 1.0, "uV", 0, fmt="212", bits=12), "S", "n")
    assert record.clipped.sum() == 400 and not record.clipped[400:].any()
    kept = window_record(record, WindowSettings(window_s=0.5))  # the first window is 20 % clipped: dropped
    assert kept.dropped["saturated"] == 1


def test_uncalibrated_gains_and_unnamed_channels_are_refused(tmp_path):
    header = write_physical(tmp_path, "g", np.zeros(100), 10.0, "uV", 0)
    text = header.read_text()
    header.write_text(text.replace(" 10.0(0)/uV", " 0/uV"))
    with pytest.raises(DataError, match="g.hea: signal 0 gives gain 0, WFDB's 'uncalibrated'"):
        wfdb_dir.read_record(header, "S", "n")
    line = next(line for line in text.splitlines()[1:] if line.startswith("g.dat"))
    header.write_text(text.replace(line, "g.dat 16"))
    with pytest.raises(DataError, match="g.hea: signal 0 gives no gain"):
        wfdb_dir.read_record(header, "S", "n")
    import wfdb

    both = np.stack([np.arange(100), np.arange(100) * 2], axis=1)
    wfdb.wrsamp("two", fs=4000, units=["uV", "uV"], sig_name=["emg", "force"], d_signal=both, fmt=["16", "16"],
                adc_gain=[10.0, 1.0], baseline=[0, 0], write_dir=str(tmp_path))  # fmt: skip
    with pytest.raises(DataError, match=r"two.hea: the record has 2 signals \(0: emg, 1: force\): say which"):
        wfdb_dir.read_record(tmp_path / "two.hea", "S", "n")
    second = wfdb_dir.read_record(tmp_path / "two.hea", "S", "n", channel=1)
    assert second.adc_gain == 1.0 and second.digital[3] == 6


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
