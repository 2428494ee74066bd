"""emg-eval's pure parts: how evaluated recordings differ from the model's training data, and label renaming."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from emg_lightning.cli.evaluate import differences, label_map_flag, labelled_records, take_data_keys
from emg_lightning.data.records import Recording
from emg_lightning.runtime.errors import DataError


def prediction(muscle: str | None, rate: float):
    metadata = {"muscle": muscle} if muscle else {}
    record = Recording("r", "s", "normal", rate, np.zeros(10, dtype=np.int16), 1.0, metadata)
    return SimpleNamespace(record=record)


def test_differences_name_other_muscles_and_rates_only():
    trained = {"muscles": ["biceps brachii"], "native_rates_hz": [23437.5]}
    assert differences(trained, [prediction("biceps brachii", 23437.5)]) == {}
    shifted = differences(trained, [prediction("deltoid", 32768.0), prediction("biceps brachii", 23437.5)])
    assert shifted == {
        "muscles": {"training": ["biceps brachii"], "evaluated": ["biceps brachii", "deltoid"]},
        "native_rates_hz": {"training": [23437.5], "evaluated": [23437.5, 32768.0]},
    }
    assert differences({}, [prediction("deltoid", 32768.0)]) == {}  # a model from before training_data existed


def test_label_map_renames_emglab_labels_and_nonsense_is_refused():
    headers = [Path("N2001A01BB01.hea"), Path("N2001C01BB51.hea")]
    labelled = labelled_records(headers, None, {"als": "neuropathy"}, None)
    assert [(h.stem, s, label) for h, s, label in labelled] == [
        ("N2001A01BB01", "A01", "neuropathy"),
        ("N2001C01BB51", "C01", "normal"),
    ]
    with pytest.raises(DataError, match="--label-map 'als' must be LABEL=CLASS pairs"):
        label_map_flag("als")
    assert label_map_flag("A=als,C=normal") == {"A": "als", "C": "normal"}


def test_training_keys_are_taken_from_the_command_line():
    rest, found = take_data_keys(
        ["model", "folder", "data.manifest=labels.csv", "data.label_map={neuropathy: als}", "--out", "x"]
    )
    assert rest == ["model", "folder", "--out", "x"]
    assert found == {"manifest": "labels.csv", "label_map": {"neuropathy": "als"}}
    with pytest.raises(DataError, match="emg-eval takes data.pattern, data.manifest, data.label_map; data.root is not"):
        take_data_keys(["data.root=/x"])
    with pytest.raises(DataError, match="data.label_map=als must be a mapping"):
        take_data_keys(["data.label_map=als"])


def test_a_renamed_label_reaches_the_record_read_from_an_emglab_name(tmp_path):
    """emg-eval 'data.label_map={als: neuropathy}' on EMGLab-named files: the record carries the renamed label (it
    once kept the name's 'als', and the report refused the model's class list)."""
    from emg_lightning.data.readers.record_files import read_any

    from conftest import write_record

    header = write_record(tmp_path, "N2001A01BB01", np.arange(2000, dtype=np.int16), 23437.5, 13.107, "uV")
    ((_, subject, label),) = labelled_records([header], None, {"als": "neuropathy"}, None)
    record = read_any(header, subject, label)
    assert (record.subject, record.label) == ("A01", "neuropathy")
    assert read_any(header).label == "als"  # emg-predict: the name's label
