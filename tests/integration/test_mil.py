"""The record-level (multiple-instance) model: attention pooling by hand, whole-record batches, the weight column
through the report, ensembles and emg-predict, and a trained run end to end."""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict

import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from emg_lightning.config import check_settings
from emg_lightning.data.datamodule import RecordBatches
from emg_lightning.data.readers.record_files import read_any
from emg_lightning.data.readers.synthetic import generate
from emg_lightning.inference.predict import load_model, predict_record
from emg_lightning.metrics.aggregate import pool
from emg_lightning.models.mil import FeatureAttentionMIL, pool_records, record_weights
from emg_lightning.reports.ensemble import mean_probabilities
from emg_lightning.run_files.predictions import read_predictions
from emg_lightning.runtime.errors import ConfigError, DataError
from emg_lightning.training import train

from conftest import TINY_DATA, TINY_SPEC, compose_train, write_record

HEADER = "fold,seed,subject,record,window,label,predicted,p_normal,p_als"


def test_attention_weights_and_pooling_hand_computed():
    scores = torch.tensor([0.0, math.log(3.0), 5.0])
    record = torch.tensor([0, 0, 1])
    weights = record_weights(scores, record)
    assert torch.allclose(weights, torch.tensor([0.25, 0.75, 1.0]))
    probabilities = torch.tensor([[1.0, 0.0], [0.2, 0.8], [0.4, 0.6]])
    # record 0: 0.25 * [1, 0] + 0.75 * [0.2, 0.8] = [0.4, 0.6]; record 1: its one window
    expected = torch.tensor([[0.4, 0.6], [0.4, 0.6]])
    assert torch.allclose(pool_records(probabilities, weights, record), expected)
    huge = record_weights(torch.tensor([1000.0, 1000.0, -1000.0]), torch.tensor([0, 0, 1]))
    assert torch.allclose(huge, torch.tensor([0.5, 0.5, 1.0]))  # no overflow: the record's maximum is subtracted


def test_the_network_scores_every_window_and_refuses_other_widths():
    torch.manual_seed(0)
    net = FeatureAttentionMIL(num_classes=3, in_features=4, hidden=8)
    net.set_standardisation(np.array([[0.0, 1, 2, 3], [2, 1, 4, 9]]))
    assert torch.allclose(net.mean, torch.tensor([1.0, 1, 3, 6])) and torch.allclose(
        net.scale, torch.tensor([1.0, 1, 1, 3])
    )
    logits, scores = net.forward_with_attention(torch.randn(5, 4))
    assert logits.shape == (5, 3) and scores.shape == (5,)
    with pytest.raises(ValueError, match=r"expects \(windows, 4\) feature vectors"):
        net(torch.randn(5, 3))


def test_record_batches_hold_whole_records_and_every_window_once():
    record_of = np.array([3, 3, 1, 2, 2, 2, 1, 0])
    in_order = list(RecordBatches(record_of, batch_size=2, shuffle=False))
    assert [sorted(set(record_of[b])) for b in in_order] == [[0, 1], [2, 3]]
    torch.manual_seed(0)
    shuffled = list(RecordBatches(record_of, batch_size=3, shuffle=True))
    torch.manual_seed(0)
    assert shuffled == list(RecordBatches(record_of, batch_size=3, shuffle=True))  # seeded runs repeat
    assert sorted(np.concatenate(shuffled).tolist()) == list(range(8))
    for batch in shuffled:  # a record's windows are never split between batches
        for record in set(record_of[batch]):
            assert set(np.flatnonzero(record_of == record)) <= set(batch)
    assert len(RecordBatches(record_of, batch_size=3, shuffle=True)) == 2


def write_rows(path, rows: list[str], weighted: bool = True) -> None:
    path.write_text("\n".join([HEADER + (",weight" if weighted else ""), *rows]) + "\n")


def test_the_report_pools_a_record_with_the_models_weights(tmp_path):
    # record r1: windows [0.9, 0.1] (weight 0.1) and [0.2, 0.8] (weight 0.9): 0.1 * 0.9 + 0.9 * 0.2 = 0.27 normal,
    # so the record is als; the plain mean (0.55) would call it normal
    path = tmp_path / "predictions.csv"
    write_rows(
        path,
        [
            "0,0,S1,r1,0,als,normal,0.900000,0.100000,0.1",
            "0,0,S1,r1,1,als,als,0.200000,0.800000,0.9",
            "0,0,S1,r2,0,als,als,0.400000,0.600000,2",  # weights are shares of their record: 2 alone is all of it
        ],
    )
    _, rows = read_predictions(path)
    (label, p1, subject), (_, p2, _) = pool(rows, "record")
    assert (label, subject) == ("als", "S1")
    np.testing.assert_allclose(p1, [0.27, 0.73])
    np.testing.assert_allclose(p2, [0.4, 0.6])
    np.testing.assert_allclose(pool(rows, "subject")[0][1], [0.335, 0.665])
    assert [w[0] for w in (r["probabilities"] for r in rows)] == [0.9, 0.2, 0.4]  # windows keep their own


@pytest.mark.parametrize(
    "weight, message",
    [("-1", r"weight=-1.0 must be a finite number >= 0"), ("nan", "must be a finite number"), ("x", "not a number")],
)
def test_bad_weights_are_refused_naming_the_line(tmp_path, weight, message):
    path = tmp_path / "predictions.csv"
    write_rows(path, ["0,0,S1,r1,0,als,als,0.2,0.8,1", f"0,0,S1,r1,1,als,als,0.2,0.8,{weight}"])
    with pytest.raises(DataError, match=rf"predictions.csv, line 3: .*{message}"):
        read_predictions(path)


def test_a_record_whose_weights_are_all_zero_is_refused(tmp_path):
    path = tmp_path / "predictions.csv"
    write_rows(path, ["0,0,S1,r1,0,als,als,0.2,0.8,0", "0,0,S1,r1,1,als,als,0.2,0.8,0"])
    _, rows = read_predictions(path)
    with pytest.raises(DataError, match="record r1 .*weights are all 0"):
        pool(rows, "record")


def test_an_ensemble_with_a_record_level_member_averages_each_windows_share(tmp_path):
    write_rows(tmp_path / "a.csv", ["0,0,S1,r1,0,als,als,0.2,0.8,1", "0,0,S1,r1,1,als,normal,0.6,0.4,3"])
    write_rows(tmp_path / "b.csv", ["0,0,S1,r1,0,als,als,0.4,0.6", "0,0,S1,r1,1,als,als,0.0,1.0"], weighted=False)
    members = [read_predictions(tmp_path / name)[1] for name in ("a.csv", "b.csv")]
    rows = mean_probabilities(members, "fold 0, seed 0")
    # shares: member a 0.25 / 0.75, member b (window-level) 0.5 / 0.5 -> 0.375 / 0.625
    assert [r["weight"] for r in rows] == [0.375, 0.625]
    np.testing.assert_allclose([r["probabilities"] for r in rows], [[0.3, 0.7], [0.3, 0.7]])
    plain = mean_probabilities([members[1], members[1]], "fold 0, seed 0")
    assert all("weight" not in r for r in plain)  # window-level members only: no weight column


@pytest.fixture(scope="module")
def record_level_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mil") / "run"
    try:
        train(
            compose_train(
                [
                    *TINY_DATA,
                    "experiment=qemg_mil_loso",
                    "data=synthetic",
                    "print_config=false",
                    "callbacks.progress_bar=null",
                ],
                folder,
            )
        )
    finally:
        GlobalHydra.instance().clear()
    return folder


def rows_by_record(path) -> dict[str, list[dict]]:
    by_record = defaultdict(list)
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            by_record[row["record"]].append(row)
    return by_record


def test_a_trained_record_level_model_writes_weights_that_emg_predict_reproduces(record_level_run, tmp_path):
    classes = ["normal", "als", "myopathy"]
    by_record = rows_by_record(record_level_run / "predictions.csv")
    assert by_record
    for rows in by_record.values():
        assert sum(float(r["weight"]) for r in rows) == pytest.approx(1.0, abs=1e-5)
    model = load_model(record_level_run)
    assert model.pools_records
    tested = [record for record in generate(TINY_SPEC) if record.name in by_record]
    assert len(tested) == len(by_record) == 2  # the test subject's two records
    for record in tested:
        header = write_record(tmp_path, record.name, record.digital, record.sample_rate, record.adc_gain, "uV")
        result = predict_record(model, read_any(header), header)
        rows = by_record[record.name]
        np.testing.assert_allclose(result.weights, [float(r["weight"]) for r in rows], atol=1e-5)
        weighted = sum(float(r["weight"]) * np.array([float(r[f"p_{c}"]) for c in classes]) for r in rows)
        np.testing.assert_allclose(result.mean, weighted, atol=1e-5)  # the record figure the report computes


def test_label_smoothing_is_refused_for_a_record_level_model(tmp_path):
    try:
        cfg = compose_train([*TINY_DATA, "model=qemg_mil", "label_smoothing=fixed"], tmp_path)
    finally:
        GlobalHydra.instance().clear()
    with pytest.raises(ConfigError, match="trained on record labels: use label_smoothing=none"):
        check_settings(cfg)


def test_the_best_checkpoint_score_is_named_by_what_it_monitored(record_level_run):
    fitted = json.loads((record_level_run / "fit_finished.json").read_text())
    assert fitted["best_val_score"]["monitor"] == "val/loss" and fitted["best_val_score"]["value"] > 0
    assert fitted["best_val_bal_acc"] is None  # a loss is not a balanced accuracy (an Optuna objective reads it)
    assert fitted["final_val_score"]["monitor"] == "val/loss" and fitted["final_val_score"]["value"] > 0


def test_a_search_on_balanced_accuracy_is_refused_when_checkpoints_monitor_the_loss(tmp_path):
    try:
        cfg = compose_train(
            [*TINY_DATA, "experiment=qemg_mil_loso", "data=synthetic", "optimized_metric=best_val_bal_acc"], tmp_path
        )
    finally:
        GlobalHydra.instance().clear()
    with pytest.raises(ConfigError, match="callbacks.model_checkpoint.monitor=val/loss: set it to val/bal_acc"):
        check_settings(cfg)


def test_the_cv_summary_says_how_records_were_pooled(record_level_run, tmp_path):
    from emg_lightning.reports.cv_summary import markdown, report

    summary = report(record_level_run)
    assert summary["record_pooling"] == "weighted (the weight column)"
    assert "weighted by the record-level model's attention" in markdown(summary)
