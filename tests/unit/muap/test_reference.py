"""Normal ranges from a laboratory's emg-muap folder: by hand, and every folder that cannot give one."""

import numpy as np
import pytest

from emg_lightning.muap.reference import NormalRange, load_reference, normal_ranges
from emg_lightning.runtime.errors import DataError


def test_mean_plus_minus_two_sd_by_hand():
    ranges = normal_ranges([{"duration_ms": "8"}, {"duration_ms": "10"}, {"duration_ms": "12"}, {"duration_ms": ""}])
    # mean 10, SD (ddof 1) 2: normal 6 to 14
    assert ranges["duration_ms"] == NormalRange(10.0, 2.0, 3)
    assert (ranges["duration_ms"].low, ranges["duration_ms"].high) == (6.0, 14.0)
    assert [ranges["duration_ms"].place(v) for v in (5.9, 6.0, 14.0, 14.1, np.nan)] == [
        "low", "normal", "normal", "high", "n/a",
    ]  # fmt: skip
    assert "amplitude_uv" not in ranges  # no values: no range


def write_folder(folder, rows, units_per_record=None):
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["record,label,subject,muscle,age,rate_hz,units"]
    for record, label, subject, muscle, rate in rows:
        lines.append(f"{record},{label},{subject},{muscle},,{rate},2")
        durations = (units_per_record or {}).get(record, [10.0, 12.0])
        (folder / f"{record}_units.csv").write_text(
            "unit,duration_ms,amplitude_uv\n" + "".join(f"{i},{d},300\n" for i, d in enumerate(durations, 1))
        )
    (folder / "records.csv").write_text("\n".join(lines) + "\n")


def test_the_reference_leaves_out_the_own_subject_and_notes_another_setup(tmp_path):
    rows = [(f"r{i}", "normal", f"S{i}", "biceps brachii", 23437.5) for i in range(4)]
    rows.append(("p1", "myopathy", "P1", "biceps brachii", 23437.5))
    write_folder(tmp_path, rows, {"r0": [100.0, 100.0]})  # S0's own units would widen the range
    reference = load_reference(tmp_path, "biceps brachii", "S0", 23437.5)
    assert reference.subjects == ["S1", "S2", "S3"] and reference.note == ""
    assert reference.ranges["duration_ms"].mean == pytest.approx(11.0)  # units 10, 12 of S1-S3 only
    assert reference.ranges["duration_ms"].units == 6
    other = load_reference(tmp_path, "biceps brachii", "X9", 32768.0)
    assert "recorded at 23437.5 Hz, this one at 32768 Hz" in other.note


def test_folders_that_cannot_give_a_normal_range_are_refused(tmp_path):
    with pytest.raises(DataError, match="holds no records.csv"):
        load_reference(tmp_path / "none", "biceps brachii", "S0", 1.0)
    write_folder(tmp_path / "a", [(f"r{i}", "normal", f"S{i}", "deltoid", 1.0) for i in range(4)])
    with pytest.raises(DataError, match="no normal subject's record of the biceps brachii.*muscles of its normal"):
        load_reference(tmp_path / "a", "biceps brachii", "S9", 1.0)
    with pytest.raises(DataError, match="no record labelled 'healthy'"):
        load_reference(tmp_path / "a", "deltoid", "S9", 1.0, normal_label="healthy")
    write_folder(tmp_path / "three", [(f"r{i}", "normal", f"S{i}", "deltoid", 1.0) for i in range(3)])
    with pytest.raises(DataError, match="only 2 normal subject"):  # S0 is judged: S1 and S2 are left
        load_reference(tmp_path / "three", "deltoid", "S0", 1.0)
    with pytest.raises(DataError, match="names no muscle"):
        load_reference(tmp_path / "a", "", "S9", 1.0)
    (tmp_path / "a" / "r1_units.csv").unlink()
    with pytest.raises(DataError, match="r1_units.csv is missing"):
        load_reference(tmp_path / "a", "deltoid", "S9", 1.0)
