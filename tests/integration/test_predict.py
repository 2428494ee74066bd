"""emg-predict, emg-eval and the final model: training-identical preprocessing of new files (other rates, other
units), the CV-folder ensemble, the refusals, and the three-level report of an external evaluation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from emg_lightning.cli.evaluate import main as evaluate_main
from emg_lightning.data.readers.record_files import find_records, read_any
from emg_lightning.data.readers.synthetic import generate
from emg_lightning.data.windows import resample
from emg_lightning.inference.predict import load_model, predict_record, write_outputs
from emg_lightning.runtime.errors import ConfigError, DataError

from conftest import TINY_DATA, TINY_SPEC, run_main, trained, write_record

MODEL_RATE = 2343.75  # TINY_DATA's rate


def probabilities(model, header: Path) -> np.ndarray:
    return predict_record(model, read_any(header), header).probabilities


def test_predicting_the_training_data_files_reproduces_the_runs_own_test_predictions(tiny_models, tmp_path):
    # the synthetic records of the run, written as WFDB files at their native rate and in uV: emg-predict must
    # window, resample and scale them exactly as training did, so the test subject's probabilities come back
    run = tiny_models["run"]
    tested = {}
    with open(run / "predictions.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            tested[(row["record"], int(row["window"]))] = [float(row[f"p_{c}"]) for c in ("normal", "als", "myopathy")]
    test_records = sorted({record for record, _ in tested})
    model = load_model(run)
    for record in generate(TINY_SPEC):
        if record.name in test_records:
            header = write_record(tmp_path, record.name, record.digital, record.sample_rate, record.adc_gain, "uV")
            result = predict_record(model, read_any(header), header)
            for k, p in zip(result.window_index, result.probabilities):
                np.testing.assert_allclose(p, tested[(record.name, int(k))], atol=2e-6)


def test_a_record_resampled_to_the_models_rate_predicts_as_one_recorded_at_it(tiny_models, tmp_path):
    model = load_model(tiny_models["run"])
    rng = np.random.default_rng(0)
    fine = np.round(rng.standard_normal(int(4 * MODEL_RATE * 2)) * 300).astype(np.int16)  # 4 s at twice the rate
    at_model_rate = np.clip(np.round(resample(fine.astype(np.float64), 2 * MODEL_RATE, MODEL_RATE)), -32768, 32767)
    high = write_record(tmp_path, "high", fine, 2 * MODEL_RATE, 10.0, "uV")
    low = write_record(tmp_path, "low", at_model_rate, MODEL_RATE, 10.0, "uV")
    high_p, low_p = probabilities(model, high), probabilities(model, low)
    assert high_p.shape == (4, 3)
    np.testing.assert_allclose(high_p, low_p, atol=1e-6)


def test_mv_and_uv_headers_of_the_same_signal_agree(tiny_models, tmp_path):
    model = load_model(tiny_models["run"])
    digital = np.round(np.random.default_rng(1).standard_normal(int(3 * MODEL_RATE)) * 300)
    in_uv = write_record(tmp_path, "in_uv", digital, MODEL_RATE, 10.0, "uV")  # 10 ADC units per uV
    in_mv = write_record(tmp_path, "in_mv", digital, MODEL_RATE, 10000.0, "mV")  # the same: 10,000 per mV
    in_capital_mv = write_record(tmp_path, "in_capital_mv", digital, MODEL_RATE, 10000.0, "MV")
    expected = probabilities(model, in_uv)
    np.testing.assert_allclose(probabilities(model, in_mv), expected, atol=1e-6)
    np.testing.assert_allclose(probabilities(model, in_capital_mv), expected, atol=1e-6)


def test_what_cannot_be_predicted_honestly_is_refused_naming_the_file(tiny_models, tmp_path):
    model = load_model(tiny_models["run"])
    slow = write_record(tmp_path, "slow", np.zeros(4000), 1000.0, 10.0, "uV")
    with pytest.raises(DataError, match="slow.hea: recorded at 1000 Hz, below the model's 2343.75 Hz"):
        probabilities(model, slow)
    brief = write_record(tmp_path, "brief", np.ones(1000) * 50, MODEL_RATE, 10.0, "uV")
    with pytest.raises(DataError, match="brief.hea: 0.43 s long, shorter than the model's 1-s window"):
        probabilities(model, brief)
    broken = tmp_path / "broken.hea"
    broken.write_text("this is not a header\n")
    with pytest.raises(DataError, match="broken.hea: cannot parse the WFDB header"):
        read_any(broken)
    with pytest.raises(DataError, match="neither a folder of WFDB records nor a record"):
        find_records([tmp_path / "absent"])
    for clinic in ("clinic_a", "clinic_b"):  # two clinics' P01 are two people: never merged into one
        (tmp_path / clinic).mkdir()
        write_record(tmp_path / clinic, "P01_C1", np.zeros(4000, np.int16), MODEL_RATE, 10.0, "uV")
    with pytest.raises(DataError, match="clinic_a/P01_C1.hea and .*clinic_b/P01_C1.hea are both named P01_C1"):
        find_records([tmp_path / "clinic_a", tmp_path / "clinic_b"])
    with pytest.raises(DataError, match="holds no trained model"):
        load_model(tmp_path)


def test_a_cv_folder_predicts_the_mean_of_its_fold_models(tiny_models, tmp_path):
    digital = np.round(np.random.default_rng(2).standard_normal(int(3 * MODEL_RATE)) * 300)
    header = write_record(tmp_path, "new", digital, MODEL_RATE, 10.0, "uV")
    ensemble = load_model(tiny_models["cv"])
    assert len(ensemble.classifiers) == 2 and "mean of probabilities" in ensemble.kind
    folds = [probabilities(load_model(tiny_models["cv"] / "seed_0" / f"fold_{k:02d}"), header) for k in (0, 1)]
    np.testing.assert_allclose(probabilities(ensemble, header), np.mean(folds, axis=0), atol=1e-9)
    out = tmp_path / "predicted"
    write_outputs(out, ensemble, [predict_record(ensemble, read_any(header), header)], labelled=False)
    # the model named is the CV folder given, not its seed_0 subfolder
    assert json.loads((out / "prediction.json").read_text())["model"] == str(tiny_models["cv"].resolve())


def test_emg_eval_on_a_labelled_external_folder_writes_the_three_level_report(tiny_models, tmp_path, capsys):
    folder = tmp_path / "external"
    folder.mkdir()
    rng = np.random.default_rng(4)
    for subject, code in (("P01", "C"), ("P02", "A"), ("P03", "M"), ("P04", "C")):
        for k in (1, 2):
            write_record(folder, f"{subject}_{code}{k}", np.round(rng.standard_normal(int(4000 * 2.5)) * 300),
                         4000.0, 10.0, "uV")  # fmt: skip
    out = tmp_path / "eval"
    command = [
        tiny_models["cv"], folder, "--out", out,
        r"data.pattern=(?P<subject>P\d+)_(?P<label>[ACM])\d", "data.label_map={A: als, C: normal, M: myopathy}",
    ]  # fmt: skip
    code, stdout, err = run_main(evaluate_main, command, capsys)
    assert code == 0, err[-3000:]
    old_flags = [
        tiny_models["cv"], folder, "--out", tmp_path / "eval-old-flags",
        "--pattern", r"(?P<subject>P\d+)_(?P<label>[ACM])\d", "--label-map", "A=als,C=normal,M=myopathy",
    ]  # fmt: skip
    code, _, old_err = run_main(evaluate_main, old_flags, capsys)
    assert code == 0 and "note: --pattern is deprecated: use data.pattern=" in old_err
    assert (tmp_path / "eval-old-flags" / "records.csv").read_text() == (out / "records.csv").read_text()
    summary = json.loads((out / "cv_summary.json").read_text())
    assert summary["protocol"]["split"] == "external" and summary["protocol"]["leaky"] is False
    assert [summary["pooled"][level]["per_seed"]["0"]["n"] for level in ("window", "record", "subject")] == [16, 8, 4]
    assert "| record |" in stdout and (out / "confusion_matrices.png").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_subjects"] == ["P01", "P02", "P03", "P04"] and metrics["subjects_also_in_training"] == []
    code, _, err = run_main(evaluate_main, command[:4], capsys)
    assert code == 2 and "no label" in err


def test_the_final_model_trains_on_every_subject_and_emg_cv_refuses_it(tmp_path, capsys):
    run = trained(tmp_path / "final", "split=all")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["final_model"] and metrics["test_subjects"] == [] and len(metrics["val_subjects"]) == 3
    assert len(metrics["train_subjects"]) + len(metrics["val_subjects"]) == 6
    assert "final model: trained on 3 subjects" in capsys.readouterr().out
    assert load_model(run).sample_rate == MODEL_RATE
    from emg_lightning.cv.plan import plan

    with pytest.raises(ConfigError, match="split=all trains the final model"):
        plan([*TINY_DATA, "split=all"])


def test_an_evaluation_never_writes_over_the_model_it_evaluates(tiny_models, tmp_path, capsys):
    """emg-eval --out <the model's own run> once replaced its metrics.json and predictions.csv with exit 0."""
    run = tiny_models["run"]
    before = {name: (run / name).read_bytes() for name in ("metrics.json", "predictions.csv")}
    for out in (run, tiny_models["cv"], tiny_models["cv"] / "seed_0" / "fold_00"):
        code, _, err = run_main(evaluate_main, [run, run, "--out", out], capsys)
        assert code == 2 and err.startswith(f"error: --out {out} is a "), err
    assert {name: (run / name).read_bytes() for name in before} == before
