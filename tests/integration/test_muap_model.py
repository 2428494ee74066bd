"""The motor-unit (MUAP) record model: record features from signals of known units, not-measurable values read as
the training mean, one fitting row and one prediction per record, the per-record cache and its code key, reports
and comparisons without a window level, emg-predict reproducing the CV's record probability."""

from __future__ import annotations

import csv
import logging
import math

import numpy as np
import pytest
import torch

from emg_lightning.data.readers.record_files import read_any
from emg_lightning.data.readers.synthetic import generate
from emg_lightning.features import RECORD_FEATURE_SETS, describes_records, feature_names, feature_parts
from emg_lightning.inference.predict import load_model, predict_record
from emg_lightning.metrics.aggregate import aggregate, levels_of
from emg_lightning.models.linear import FeatureLinear, standardisation, standardised
from emg_lightning.muap.features import RECORD_FEATURE_NAMES, record_muap_features
from emg_lightning.reports.compare import compare
from emg_lightning.reports.cv_summary import markdown, report
from emg_lightning.run_files.predictions import read_predictions, whole_record_predictions
from emg_lightning.runtime.errors import ConfigError, DataError

from conftest import TINY_SPEC, motor_unit_signal, trained, write_record

RATE = 23437.5


def feature(vector: np.ndarray, name: str) -> float:
    return float(vector[RECORD_FEATURE_NAMES.index(name)])


def test_a_record_of_two_known_units_gives_their_count_rates_and_sizes():
    units = [
        {"amplitude_uv": 400.0, "width_ms": 0.5, "rate_hz": 9.0, "sign": 1.0},
        {"amplitude_uv": 250.0, "width_ms": 0.3, "rate_hz": 12.0, "sign": -1.0},
    ]
    signal, times = motor_unit_signal(rate=RATE, seconds=10.0, units=units)
    vector = record_muap_features(signal, RATE)
    assert vector.shape == (len(RECORD_FEATURE_NAMES),) and vector.dtype == np.float64
    assert feature(vector, "units") == 2
    # firing rates 9 and 12 Hz by construction (interval CoV 0.1): their mean 10.5 Hz
    assert feature(vector, "firing_rate_hz_mean") == pytest.approx(10.5, rel=0.1)
    # every discharge is a spike above threshold: ~ (9 + 12) per second, noise adds almost none at 3 uV
    assert feature(vector, "spikes_per_s") == pytest.approx(sum(len(t) for t in times) / 10.0, rel=0.15)
    # sizes drawn as 400 and 250 uV peak to peak: log10 of their mean (325 uV), within the clinical band's loss
    assert 10 ** feature(vector, "log10_amplitude_uv_mean") == pytest.approx(325.0, rel=0.2)
    assert feature(vector, "polyphasic_percent") == 0.0  # two- and three-phase shapes
    assert np.isfinite(vector).all()


def test_a_record_without_units_has_zero_units_and_unmeasured_values():
    flat = np.zeros(int(RATE * 5))
    vector = record_muap_features(flat, RATE)
    assert feature(vector, "units") == 0 and feature(vector, "spikes_per_s") == 0
    for name in ("duration_ms_mean", "log10_amplitude_uv_mean", "phases_mean", "polyphasic_percent"):
        assert math.isnan(feature(vector, name)), name
    noise = np.random.default_rng(0).standard_normal(int(RATE * 5)) * 5.0
    assert feature(record_muap_features(noise, RATE), "units") == 0


def test_feature_sets_join_and_refuse_what_cannot_mean_anything():
    assert feature_parts("qemg+muap") == ["qemg", "muap"]
    assert describes_records("muap") and describes_records("qemg+muap") and not describes_records("qemg")
    names = feature_names("qemg+muap", 4687.5)
    assert names[-len(RECORD_FEATURE_NAMES) :] == [f"muap:{n}" for n in RECORD_FEATURE_NAMES]
    assert len(names) == 82 + 14  # 82 qEMG features at 4.7 kHz (test_qemg), 14 MUAP values
    with pytest.raises(ConfigError, match="'wavelets' is unknown"):
        feature_parts("qemg+wavelets")
    with pytest.raises(ConfigError, match="names a set twice"):
        feature_parts("muap+muap")


def test_unmeasured_values_are_read_as_the_training_mean():
    x = np.array([[1.0, np.nan], [3.0, 4.0], [5.0, 8.0]])
    mean, scale = standardisation(x)
    # by hand: column 0 mean 3, SD sqrt((4 + 0 + 4) / 3); column 1 over its two measured rows: mean 6, SD 2
    np.testing.assert_allclose(mean, [3.0, 6.0])
    np.testing.assert_allclose(scale, [math.sqrt(8 / 3), 2.0])
    np.testing.assert_allclose(standardised(x, mean, scale)[0], [-2 / math.sqrt(8 / 3), 0.0])
    net = FeatureLinear(num_classes=2, in_features=2)
    torch.manual_seed(0)
    net.linear.reset_parameters()
    net.mean.copy_(torch.tensor(mean))
    net.scale.copy_(torch.tensor(scale))
    with torch.no_grad():
        unmeasured = net(torch.tensor([[1.0, float("nan")]]))
        at_mean = net(torch.tensor([[1.0, 6.0]]))
    torch.testing.assert_close(unmeasured, at_mean)


def test_window_predictions_become_one_per_record():
    predictions = {
        "probabilities": torch.tensor([[0.8, 0.2], [0.4, 0.6], [0.1, 0.9], [0.3, 0.7]]),
        "y": torch.tensor([0, 0, 1, 0]),
        "subject": torch.tensor([0, 0, 1, 0]),
        "record": torch.tensor([5, 5, 2, 7]),
        "window": torch.tensor([0, 1, 0, 0]),
    }
    whole = whole_record_predictions(predictions)
    assert whole["record"].tolist() == [2, 5, 7]
    torch.testing.assert_close(whole["probabilities"], torch.tensor([[0.1, 0.9], [0.6, 0.4], [0.3, 0.7]]))
    assert whole["y"].tolist() == [1, 0, 0] and whole["subject"].tolist() == [1, 0, 0]
    assert whole["window"].tolist() == [-1, -1, -1]


def _rows(window: int) -> list[dict]:
    return [
        {"seed": 0, "subject": s, "record": f"{s}r", "window": window, "label": label,
         "probabilities": np.array(p)}
        for s, label, p in (("a", "normal", [0.9, 0.1]), ("b", "als", [0.3, 0.7]), ("c", "als", [0.6, 0.4]))
    ]  # fmt: skip


def test_whole_record_rows_have_no_window_level_and_cannot_mix_with_window_rows():
    assert levels_of(_rows(-1)) == ("record", "subject")
    assert levels_of(_rows(0)) == ("window", "record", "subject")
    with pytest.raises(DataError, match="mix rows of whole records"):
        levels_of(_rows(-1) + [{**_rows(0)[0], "subject": "d", "record": "dr"}])
    summary = aggregate([{"fold": 0, "seed": 0, "rows": _rows(-1)}], ["normal", "als"])
    assert summary["levels"] == ["record", "subject"] and "window" not in summary["pooled"]
    assert summary["pooled"]["record"]["per_seed"]["0"]["acc"] == pytest.approx(2 / 3)  # c is called normal
    text = markdown({"name": "x", "protocol": {"split": "loso", "leaky": False}, "complete": True, "missing": [],
                     "jobs_expected": 1, "failed": [], "selection_score": None, **summary})  # fmt: skip
    assert "| window | not applicable" in text and "## Per fold (record level)" in text
    assert "Levels: no window level (one prediction per record), record" in text


@pytest.fixture(scope="module")
def muap_runs(tmp_path_factory):
    """Two LOSO folds of the MUAP record model and of qEMG on the tiny synthetic data (a CV folder each)."""
    root = tmp_path_factory.mktemp("muap")
    for model in ("muap", "qemg"):
        for fold in (0, 1):
            trained(root / model / "seed_0" / f"fold_{fold:02d}", f"model={model}", f"data.fold={fold}")
    return root


def read_rows(path) -> list[dict]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_the_muap_model_predicts_each_test_record_once(muap_runs):
    rows = read_rows(muap_runs / "muap" / "seed_0" / "fold_00" / "predictions.csv")
    tested = [r for r in generate(TINY_SPEC) if r.subject == rows[0]["subject"]]
    assert sorted(r["record"] for r in rows) == sorted(r.name for r in tested)  # 2 records of the test subject
    assert {r["window"] for r in rows} == {"-1"}
    classes, parsed = read_predictions(muap_runs / "muap" / "seed_0" / "fold_00" / "predictions.csv")
    assert levels_of(parsed) == ("record", "subject")


def test_the_muap_model_is_fitted_on_one_row_per_record(tmp_path):
    from hydra.core.global_hydra import GlobalHydra

    from emg_lightning.config import build_datamodule

    from conftest import TINY_DATA, compose_train

    try:
        cfg = compose_train([*TINY_DATA, "model=muap"], tmp_path)
    finally:
        GlobalHydra.instance().clear()
    datamodule = build_datamodule(cfg)
    datamodule.setup()
    rows = datamodule.fitting_rows()
    records = datamodule.table.columns["record"][rows]
    # 5 non-test subjects x 2 records (TINY_SPEC), each record once, whatever its number of windows
    assert len(rows) == len(set(records.tolist())) == 10
    assert len(np.concatenate([datamodule.train_set.rows, datamodule.val_set.rows])) > 10
    # every window of a record carries that record's vector
    x = datamodule.feature_table
    for record in set(records.tolist()):
        of_record = x[datamodule.table.columns["record"] == record]
        np.testing.assert_array_equal(of_record, np.broadcast_to(of_record[0], of_record.shape))


def test_record_features_are_cached_per_record_and_keyed_by_the_code(muap_runs, tmp_path, monkeypatch, caplog):
    from hydra.core.global_hydra import GlobalHydra

    from emg_lightning.config import build_datamodule

    from conftest import TINY_DATA, compose_train

    try:
        cfg = compose_train([*TINY_DATA, "model=muap"], tmp_path)
    finally:
        GlobalHydra.instance().clear()
    cache = tmp_path / "cache"
    cfg.paths.cache_dir = str(cache)
    with caplog.at_level(logging.INFO):
        build_datamodule(cfg).setup()
    assert "computing muap features of 12 records" in caplog.text
    stored = sorted((cache / "record-features" / "muap").glob("*.npy"))
    assert len(stored) == 12
    caplog.clear()
    with caplog.at_level(logging.INFO):
        again = build_datamodule(cfg)
        again.setup()
    assert "computing muap features" not in caplog.text  # read back
    version, extract, names = RECORD_FEATURE_SETS["muap"]
    monkeypatch.setitem(RECORD_FEATURE_SETS, "muap", ("another-version", extract, names))
    caplog.clear()
    with caplog.at_level(logging.INFO):
        build_datamodule(cfg).setup()
    assert "computing muap features of 12 records" in caplog.text  # changed code: never the stale values
    assert len(list((cache / "record-features" / "muap").glob("*.npy"))) == 24


def test_reports_and_comparisons_have_no_window_level_for_the_muap_model(muap_runs, tmp_path):
    summary = report(muap_runs / "muap")
    assert summary["levels"] == ["record", "subject"]
    assert "| window | not applicable" in (muap_runs / "muap" / "cv_summary.md").read_text()
    result = compare([muap_runs / "qemg", muap_runs / "muap"], tmp_path / "cmp")
    assert result["levels"] == ["record", "subject"]
    assert [row["level"] for row in result["comparisons"][0]["levels"]] == ["record", "subject"]
    assert "No window level" in (tmp_path / "cmp" / "comparison.md").read_text()


def test_emg_predict_reproduces_the_cv_record_probability(muap_runs, tmp_path):
    run = muap_runs / "muap" / "seed_0" / "fold_00"
    rows = {r["record"]: r for r in read_rows(run / "predictions.csv")}
    model = load_model(run)
    classes = model.classes
    for record in (r for r in generate(TINY_SPEC) if r.name in rows):
        header = write_record(tmp_path, record.name, record.digital, record.sample_rate, record.adc_gain, "uV")
        result = predict_record(model, read_any(header), header)
        expected = [float(rows[record.name][f"p_{c}"]) for c in classes]
        np.testing.assert_allclose(result.mean, expected, atol=1e-5)


def test_only_the_closed_form_model_reads_record_features(tmp_path):
    from hydra.core.global_hydra import GlobalHydra

    from emg_lightning.config import build_datamodule, network_settings

    from conftest import TINY_DATA, compose_train

    try:
        cfg = compose_train([*TINY_DATA, "model=qemg_mil", "data.features=muap"], tmp_path)
    finally:
        GlobalHydra.instance().clear()
    with pytest.raises(ConfigError, match="only the closed-form linear model reads it"):
        network_settings(dict(cfg.model.net), build_datamodule(cfg))
