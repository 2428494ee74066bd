"""EMGLab N2001 reader: crafted bad inputs always; the real 340 records when EMGLAB_DIR is set."""

import numpy as np
import pytest

from emg_lightning.data.cache import build_table
from emg_lightning.data.readers import emglab
from emg_lightning.data.windows import WindowSettings
from emg_lightning.runtime.errors import DataError

HEADER = "{name} 1 23437.5 {n}\n{name}.bin 16+20 13.1070/uV\n#age: 56\n#diagnosis: ALS\n#level: low\n"


def write_record(folder, name="N2001A01BB01", n=1000, samples=None, header=None):
    (folder / f"{name}.hea").write_text(header or HEADER.format(name=name, n=n))
    if samples is None:
        samples = np.arange(n + 20, dtype=np.int16)
    samples.astype("<i2").tofile(folder / f"{name}.bin")


def test_reads_digital_values_gain_and_metadata(tmp_path):
    samples = np.arange(1020, dtype=np.int16)
    samples[15] = -32768  # saturation stays an int16 extreme, never NaN
    write_record(tmp_path, samples=samples)
    r = emglab.read_record(tmp_path / "N2001A01BB01.hea")
    assert (r.subject, r.label, r.sample_rate, r.adc_gain) == ("A01", "als", 23437.5, 13.107)
    assert r.digital[0] == 10 and r.digital[5] == -32768 and len(r.digital) == 1000  # byte offset 20 = 10 samples
    assert r.metadata["diagnosis"] == "ALS" and r.metadata["age"] == "56"
    assert np.isfinite(r.microvolts).all()


def test_missing_or_empty_directory(tmp_path):
    with pytest.raises(DataError, match="EMGLab directory .*nope does not exist: set data.root"):
        emglab.list_records(tmp_path / "nope")
    with pytest.raises(DataError, match="holds no .hea header files"):
        emglab.list_records(tmp_path)


def test_header_without_data_file(tmp_path):
    write_record(tmp_path)
    (tmp_path / "N2001A01BB01.bin").unlink()
    with pytest.raises(DataError, match=r"N2001A01BB01.hea: its data file N2001A01BB01.bin is missing"):
        emglab.read_record(tmp_path / "N2001A01BB01.hea")


def test_data_file_shorter_than_header_says(tmp_path):
    write_record(tmp_path, n=1000, samples=np.zeros(500, np.int16))
    with pytest.raises(DataError, match=r"N2001A01BB01.bin: holds 1000 bytes but its header needs 2020.*truncated"):
        emglab.read_record(tmp_path / "N2001A01BB01.hea")


def test_unknown_label_code(tmp_path):
    write_record(tmp_path, name="N2001X01BB01")
    with pytest.raises(DataError, match="N2001X01BB01.hea: record name 'N2001X01BB01' is not an EMGLab N2001 name"):
        emglab.read_record(tmp_path / "N2001X01BB01.hea")


def test_malformed_header(tmp_path):
    write_record(tmp_path, header="this is not a header\n")
    with pytest.raises(DataError, match="cannot parse the WFDB header"):
        emglab.read_record(tmp_path / "N2001A01BB01.hea")


@pytest.mark.realdata
def test_real_n2001_records_subjects_and_windows(emglab_dir):
    headers = emglab.list_records(emglab_dir)
    records = [emglab.read_record(h) for h in headers]
    assert len(records) == 340
    subjects = {r.subject: r.label for r in records}
    assert len(subjects) == 22
    counts = {c: sum(1 for label in subjects.values() if label == c) for c in ("als", "normal", "myopathy")}
    assert counts == {"als": 7, "normal": 9, "myopathy": 6}
    settings = WindowSettings(trim_after_s={"N2001A08": 10.69})
    table = build_table(iter(records), settings)
    dropped = table.summary["windows_dropped"]
    assert dropped["trimmed"] == 15  # A08's shared tail artifact, one window in each of its 15 records
    assert dropped["flat"] >= 10  # the dead recording N2001A06BB08
    assert len(table) + sum(dropped.values()) == 340 * 11
    x = np.asarray(table.windows, dtype=np.float32) / table.adc_gain
    assert np.isfinite(x).all()
    assert (x.std(axis=1) > 0).all()
