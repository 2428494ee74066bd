"""Nothing a user has breaks: a run folder written by 0.1.0 (tests/fixtures/run-0.1.0-qemg, before the 0.2.0
moves) still loads, predicts new recordings the way it predicted its own test windows, and reports as a CV fold."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from emg_lightning.cli.evaluate import differences
from emg_lightning.data.readers.record_files import read_any
from emg_lightning.data.readers.synthetic import generate
from emg_lightning.inference.predict import load_model, predict_record
from emg_lightning.reports.cv_summary import report
from emg_lightning.run_files.predictions import read_predictions
from emg_lightning.runs import previous_run

from conftest import TINY_SPEC, write_record

OLD_RUN = Path(__file__).resolve().parents[1] / "fixtures" / "run-0.1.0-qemg"


@pytest.fixture
def old_run(tmp_path) -> Path:
    return Path(shutil.copytree(OLD_RUN, tmp_path / "run"))


def test_an_old_run_predicts_its_own_test_windows_again(old_run, tmp_path):
    model = load_model(old_run)
    assert model.classes == ["normal", "als", "myopathy"] and model.training_data == {}  # written before it existed
    classes, rows = read_predictions(old_run / "predictions.csv")
    tested = {r["record"] for r in rows}
    for record in generate(TINY_SPEC):
        if record.name not in tested:
            continue
        header = write_record(tmp_path, record.name, record.digital, record.sample_rate, record.adc_gain, "uV")
        prediction = predict_record(model, read_any(header), header)
        expected = np.array([r["probabilities"] for r in rows if r["record"] == record.name])
        # the same windows, the same features, the same weights: the probabilities 0.1.0 wrote (to its 6 decimals)
        assert np.allclose(prediction.probabilities, expected, atol=2e-6)
        assert differences(model.training_data, [prediction]) == {}


def test_an_old_run_is_a_finished_fold_and_reports(old_run, tmp_path):
    settings = json.loads((old_run / "fit_finished.json").read_text())
    assert settings  # written by 0.1.0 at the end of its fit
    cv_dir = tmp_path / "cv"
    shutil.copytree(old_run, cv_dir / "seed_0" / "fold_00")
    summary = report(cv_dir)
    assert summary["classes"] == ["normal", "als", "myopathy"]
    assert summary["pooled"]["window"]["per_seed"]["0"]["n"] == len(read_predictions(old_run / "predictions.csv")[1])


def test_a_rerun_finds_the_old_run_finished(old_run):
    from omegaconf import OmegaConf

    settings = OmegaConf.to_container(OmegaConf.load(old_run / "config.yaml"))
    assert previous_run(old_run, settings) == "finished"
