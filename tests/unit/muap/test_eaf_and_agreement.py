"""EMGLAB annotation files read and written, and the agreement with an expert counted by hand."""

from pathlib import Path

import numpy as np
import pytest

from emg_lightning.muap.agreement import agreement, reference_fits_record
from emg_lightning.muap.decompose import Decomposition, MotorUnit
from emg_lightning.muap.eaf import Annotation, ExpertTemplate, read_eaf, write_eaf
from emg_lightning.runtime.errors import DataError

from conftest import motor_unit_signal

DECOMPOSED = Path(__file__).resolve().parents[4] / "shared" / "data" / "emglab-n2001-decomposition"


def test_write_then_read_gives_the_same_discharges_and_templates(tmp_path):
    discharges = {1: np.array([0.12345, 0.5, 1.25]), 2: np.array([0.3, 0.7])}
    templates = {u: ExpertTemplate(np.arange(-5.0, 6.0) * u, 10_000.0, 5) for u in (1, 2)}
    (tmp_path / "r.eaf").write_text(write_eaf(discharges, templates))
    back = read_eaf(tmp_path / "r.eaf")
    assert back.discharges_s.keys() == {1, 2}
    assert np.allclose(back.discharges_s[1], discharges[1], atol=1e-5)
    assert np.array_equal(back.templates[2].samples_uv, templates[2].samples_uv)
    assert back.templates[1].index == 5 and back.templates[1].rate_hz == 10_000.0


def test_damaged_annotation_files_are_refused_with_their_name(tmp_path):
    good = write_eaf({1: np.array([0.1])}, {})
    cases = {
        "cut.eaf": (good[: len(good) // 2], "not a readable EMGLAB annotation file"),
        "other.eaf": ("<?xml version='1.0'?><svg></svg>", "the root element is <svg>"),
        "empty.eaf": (good.replace("0.10000 1 1", ""), "holds no discharges"),
        "words.eaf": (good.replace("0.10000 1 1", "zero one"), "spike event line 1 'zero one' is not"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(DataError, match=message):
            read_eaf(tmp_path / name)


@pytest.mark.skipif(not DECOMPOSED.is_dir(), reason="real-data test: ../shared/data/emglab-n2001-decomposition")
def test_the_expert_files_read_as_their_source_describes():
    # SOURCE.md: N2001C01BB55 has 4 units; templates of 625 samples at 11,718.75 Hz aligned at sample 312 (1-based)
    annotation = read_eaf(DECOMPOSED / "N2001C01BB55.eaf")
    assert sorted(annotation.discharges_s) == [1, 2, 3, 4]
    template = annotation.templates[1]
    assert len(template.samples_uv) == 625 and template.rate_hz == 11718.75 and template.index == 311


def one_unit(rate=20_000.0):
    t = np.arange(-200, 201) / rate * 1e3
    shape = -t / 0.5 * np.exp(-(t**2) / 0.5)
    return shape * 300 / np.ptp(shape), 200


def test_precision_and_recall_by_hand():
    rate = 20_000.0
    shape, centre = one_unit(rate)
    found = np.round(np.array([0.1002, 0.2009, 0.3, 0.5, 0.9]) * rate).astype(int)
    unit = MotorUnit(found, shape, centre, shape)
    decomposition = Decomposition([unit], rate, 1.0, 5.0, len(found), 0.5)
    expert = ExpertTemplate(shape[::2], rate / 2, centre // 2)  # the same potential at half the rate
    annotation = Annotation({7: np.array([0.1, 0.2, 0.3, 0.4])}, {7: expert})
    (row,) = agreement(decomposition, annotation)
    # within +-0.5 ms: 0.1002 and 0.3 (0.2009 is 0.9 ms off); in the expert's span [0.0995, 0.4005]: 3 found
    assert row.found_unit == 0 and row.correlation > 0.99
    assert (row.true_positives, row.found_in_span) == (2, 3)
    assert row.precision == pytest.approx(2 / 3) and row.recall == pytest.approx(2 / 4)


def test_a_reference_of_another_record_is_told_apart_by_content():
    rate = 23437.5
    signal, times = motor_unit_signal(rate=rate)
    half = int(0.0266 * rate)
    templates, discharges = {}, {}
    for u, t in enumerate(times, 1):
        snippets = np.array([signal[d - half : d + half + 1] for d in t if half <= d < len(signal) - half])
        templates[u] = ExpertTemplate(np.median(snippets, axis=0)[::2], rate / 2, half // 2)
        discharges[u] = t / rate
    own = Annotation(discharges, templates)
    assert reference_fits_record(signal, rate, own) > 0.9
    other_signal, _ = motor_unit_signal(rate=rate, seed=5)  # the same units firing at other times
    assert reference_fits_record(other_signal, rate, own) < 0.5
