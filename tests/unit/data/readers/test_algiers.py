"""The Algiers reader: both layouts on crafted files (subjects, labels, muscles, samples, refusals); the 6 original
.asc files and the WFDB copy when ALGIERS_DIR is set (to the WFDB copy, as data=algiers reads it; CI sets it to
../shared/data/algiers-iemg/records, beside which original-sample/ holds the 6 originals)."""

import os
from pathlib import Path

import numpy as np
import pytest
import wfdb

from emg_lightning.data.readers import SourceOptions, get_source
from emg_lightning.data.readers.algiers import UV_PER_COUNT, layout, read_asc
from emg_lightning.data.readers.base import selected_records
from emg_lightning.runtime.errors import ConfigError, DataError

ALGIERS = get_source("algiers")


def write_asc(folder: Path, relative: str, counts: np.ndarray) -> Path:
    """An original-format file: one line of microvolts (counts x 0.78125) printed to 0.1 uV, as distributed."""
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{c * UV_PER_COUNT:11.4f}" for c in counts) + "\n")
    return path


@pytest.fixture
def asc_tree(tmp_path):
    rng = np.random.default_rng(0)
    files = {
        "01_Deltoid/Healthy/EMG _001 _01_ RD_Hea.asc": rng.integers(-900, 900, 40000),
        "02_Biceps Brachii/Healthy/EMG _201 _01_ LB_Hea.asc": rng.integers(-900, 900, 40000),
        "01_Deltoid/Myopathy/EMG _104 _01_ RD_Myo.asc": rng.integers(-900, 900, 40000),
        "02_Biceps Brachii/Neuropathy/EMG _351 _48_ RB_Neu.asc": rng.integers(-900, 900, 40000),
    }
    for relative, counts in files.items():
        write_asc(tmp_path, relative, counts)
    return tmp_path, files


def test_the_asc_tree_gives_class_plus_patient_subjects_muscles_and_exact_counts(asc_tree):
    root, files = asc_tree
    entries = {e.name: e for e in ALGIERS.records(SourceOptions(root=str(root)))}
    # patient 01 of the healthy and of the myopathy class are two people
    assert {n: (e.subject, e.label) for n, e in entries.items()} == {
        "ALG001_H01_RD": ("H01", "normal"),
        "ALG201_H01_LB": ("H01", "normal"),
        "ALG104_M01_RD": ("M01", "myopathy"),
        "ALG351_N48_RB": ("N48", "neuropathy"),
    }
    assert entries["ALG201_H01_LB"].metadata["muscle"] == "biceps brachii"
    assert entries["ALG201_H01_LB"].metadata["side"] == "left"
    record = ALGIERS.read(entries["ALG104_M01_RD"], SourceOptions(root=str(root)))
    assert record.sample_rate == 32768.0 and record.adc_gain == pytest.approx(1.28)
    assert np.array_equal(record.digital, files["01_Deltoid/Myopathy/EMG _104 _01_ RD_Myo.asc"])


def test_the_wfdb_copy_reads_the_same_as_the_asc_file(asc_tree, tmp_path_factory):
    root, files = asc_tree
    counts = files["02_Biceps Brachii/Neuropathy/EMG _351 _48_ RB_Neu.asc"]
    copy = tmp_path_factory.mktemp("wfdb")
    wfdb.wrsamp(
        "ALG351_N48_RB", fs=32768, units=["uV"], sig_name=["EMG"], d_signal=counts.astype(np.int16)[:, None],
        fmt=["16"], adc_gain=[1.28], baseline=[0], write_dir=str(copy),
        comments=["class: neuropathy", "subject: N48", "muscle: biceps brachii", "side: right"],
    )  # fmt: skip
    (entry,) = ALGIERS.records(SourceOptions(root=str(copy)))
    assert (entry.name, entry.subject, entry.label, entry.metadata["muscle"]) == (
        "ALG351_N48_RB",
        "N48",
        "neuropathy",
        "biceps brachii",
    )
    from_wfdb = ALGIERS.read(entry, SourceOptions(root=str(copy)))
    (from_asc,) = [e for e in ALGIERS.records(SourceOptions(root=str(root))) if e.name == "ALG351_N48_RB"]
    assert np.array_equal(from_wfdb.digital, ALGIERS.read(from_asc, SourceOptions()).digital)
    assert from_wfdb.adc_gain == pytest.approx(1.28)


def test_muscles_and_label_map_select_and_rename(asc_tree):
    root, _ = asc_tree
    options = SourceOptions(root=str(root))
    deltoid = selected_records("algiers", options, muscles=["Deltoid"])
    assert sorted(e.name for e in deltoid) == ["ALG001_H01_RD", "ALG104_M01_RD"]
    renamed = selected_records("algiers", options, label_map={"neuropathy": "als"})
    assert {e.label for e in renamed} == {"normal", "myopathy", "als"}
    with pytest.raises(DataError, match=r"data.muscles names \['tibialis'\], but the records are from"):
        selected_records("algiers", options, muscles=["tibialis"])


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "is empty"),
        ("  12.5000  abc  3.1000\n", "holds 'abc', not a number"),
        ("  12.5000  nan  3.1000\n", "non-finite"),
        ("".join(f"{v:11.4f}" for v in np.linspace(-100, 100, 5000)), "off the 0.78125 uV grid"),
    ],
)
def test_damaged_asc_files_are_one_line_naming_the_file(tmp_path, content, message):
    path = tmp_path / "EMG _001 _01_ RD_Hea.asc"
    path.write_text(content)
    with pytest.raises(DataError, match=f"EMG _001 _01_ RD_Hea.asc: .*{message}"):
        read_asc(path)


def test_names_folders_and_layouts_that_cannot_be_read_are_refused(asc_tree, tmp_path_factory, monkeypatch):
    root, _ = asc_tree
    (root / "01_Deltoid/Healthy/notes.asc").write_text("1.0\n")
    with pytest.raises(DataError, match="notes.asc: the name does not follow the Algiers pattern"):
        ALGIERS.records(SourceOptions(root=str(root)))
    (root / "01_Deltoid/Healthy/notes.asc").unlink()
    write_asc(root, "01_Deltoid/Myopathy/EMG _002 _02_ LD_Hea.asc", np.zeros(10, dtype=int))
    with pytest.raises(DataError, match="the file name says Healthy but it lies in a Myopathy folder"):
        ALGIERS.records(SourceOptions(root=str(root)))
    both = tmp_path_factory.mktemp("both")
    write_asc(both, "x/EMG _001 _01_ RD_Hea.asc", np.zeros(10, dtype=int))
    (both / "r.hea").write_text("r 1 32768 10\n")
    with pytest.raises(DataError, match="holds both .asc files and WFDB headers"):
        layout(both)
    with pytest.raises(DataError, match="holds neither .asc files"):
        layout(tmp_path_factory.mktemp("empty"))
    monkeypatch.setenv("EMG_DATA_DIR", str(tmp_path_factory.mktemp("nothing-fetched")))
    with pytest.raises(
        ConfigError, match="data.root is not set and algiers has not been fetched into .*emg-data fetch algiers"
    ):
        ALGIERS.records(SourceOptions())


def test_a_wfdb_header_without_the_sets_comments_is_refused(tmp_path):
    wfdb.wrsamp(
        "ALG001_H01_RD", fs=32768, units=["uV"], sig_name=["EMG"], d_signal=np.zeros((100, 1), dtype=np.int16),
        fmt=["16"], adc_gain=[1.28], baseline=[0], write_dir=str(tmp_path), comments=["class: healthy"],
    )  # fmt: skip
    with pytest.raises(DataError, match="ALG001_H01_RD.hea: needs the comments '#class: normal|myopathy|neuropathy'"):
        ALGIERS.records(SourceOptions(root=str(tmp_path)))


@pytest.fixture
def algiers_dir() -> Path:
    """The WFDB copy (ALGIERS_DIR), its 397 headers present."""
    value = os.environ.get("ALGIERS_DIR")
    if not value or not any(Path(value).glob("ALG*.hea")):
        pytest.skip("real-data test: set ALGIERS_DIR to the Algiers WFDB copy (algiers-iemg/records; CI sets it)")
    return Path(value)


def test_the_six_original_files_match_their_wfdb_copies(algiers_dir):
    if not (algiers_dir.parent / "original-sample").is_dir():
        pytest.skip(f"real-data test: no original-sample/ beside {algiers_dir}")
    originals = {e.name: e for e in ALGIERS.records(SourceOptions(root=str(algiers_dir.parent / "original-sample")))}
    copies = {e.name: e for e in ALGIERS.records(SourceOptions(root=str(algiers_dir)))}
    # SOURCE.md: one original per class and muscle
    assert len(originals) == 6 and {e.label for e in originals.values()} == {"normal", "myopathy", "neuropathy"}
    for name, original in originals.items():
        copy = copies[name]
        assert (original.subject, original.label, original.metadata["muscle"]) == (
            copy.subject,
            copy.label,
            copy.metadata["muscle"],
        )
        assert np.array_equal(ALGIERS.read(original, None).digital, ALGIERS.read(copy, None).digital)


def test_the_wfdb_copy_holds_the_sets_published_counts(algiers_dir):
    entries = ALGIERS.records(SourceOptions(root=str(algiers_dir)))
    subjects = {e.subject: e.label for e in entries}
    # SOURCE.md: 397 recordings of 238 people, 50 healthy, 95 myopathy, 93 neuropathy
    assert len(entries) == 397 and len(subjects) == 238
    counts = {label: sum(1 for v in subjects.values() if v == label) for label in ("normal", "myopathy", "neuropathy")}
    assert counts == {"normal": 50, "myopathy": 95, "neuropathy": 93}
