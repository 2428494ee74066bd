"""Leakage checked where it can happen: after ``setup()``, on the rows each set actually serves, and on every
statistic fitted on data (the robust amplitude scale, the closed-form model's standardisation and inner choice),
recomputed here from the fold's subject lists alone -- never from the DataModule's own row lists."""

from __future__ import annotations

import numpy as np
import pytest
from hydra.core.global_hydra import GlobalHydra

from emg_lightning.config import build_datamodule

from conftest import TINY_DATA, compose_train

SPLITS = [
    ["split=loso", "data.fold=3"],
    ["split=group_kfold", "split.k=3", "data.fold=1"],
    ["split=fixed", "split.test_subjects=[SA01,SM02]", "split.val_subjects=[SN01]"],
]


def datamodule_for(overrides: list[str], tmp_path):
    try:
        cfg = compose_train([*TINY_DATA, *overrides], tmp_path)
    finally:
        GlobalHydra.instance().clear()
    return cfg, build_datamodule(cfg)


def subjects_of_rows(datamodule, rows: np.ndarray) -> set[str]:
    return set(datamodule.table.columns["subject"][rows].tolist())


@pytest.mark.parametrize("split", SPLITS, ids=lambda s: s[0])
def test_the_rows_each_set_serves_belong_to_its_subjects_and_the_sets_are_disjoint(split, tmp_path):
    _, datamodule = datamodule_for(split, tmp_path)
    datamodule.setup()
    fold = datamodule.fold
    parts = {"train": datamodule.train_set, "val": datamodule.val_set, "test": datamodule.test_set}
    for name, dataset in parts.items():
        # the subjects of the windows actually served, read from the batches themselves
        served = {datamodule.subjects[int(s)] for s in dataset[np.arange(len(dataset))]["subject"]}
        assert served == set(getattr(fold, name)), name
    assert not set(fold.train) & set(fold.val) and not set(fold.train) & set(fold.test)
    assert not set(fold.val) & set(fold.test)
    # every window of the chosen classes is served exactly once
    served_rows = np.concatenate([d.rows for d in parts.values()])
    assert len(served_rows) == len(set(served_rows.tolist())) == len(datamodule.table)


def test_the_robust_scale_is_fitted_on_training_windows_only(tmp_path, monkeypatch):
    from emg_lightning.data import datamodule as datamodule_module

    seen = []
    real = datamodule_module.robust_scale
    monkeypatch.setattr(datamodule_module, "robust_scale", lambda windows: seen.append(windows) or real(windows))
    _, datamodule = datamodule_for(["split=loso", "data.fold=2", "data.normalization=robust"], tmp_path)
    datamodule.setup()
    (fitted,) = seen
    table = datamodule.table
    by_subject = {}
    for row, subject in enumerate(table.columns["subject"]):
        by_subject.setdefault(subject, []).append(np.asarray(table.windows[row]) / table.adc_gain)
    training = np.stack([w for s in datamodule.fold.train for w in by_subject[s]])
    others = np.stack([w for s in (*datamodule.fold.val, *datamodule.fold.test) for w in by_subject[s]])
    for window in fitted:  # each window it saw is a training subject's, none a validation or test subject's
        assert np.any(np.all(training == window, axis=1))
        assert not np.any(np.all(others == window, axis=1))
    assert datamodule.robust_scale_uv == pytest.approx(real(fitted))


def test_the_closed_form_fit_sees_the_non_test_subjects_only(tmp_path, monkeypatch):
    from emg_lightning import training

    captured = {}
    real = training.fit_feature_linear

    def spy(net, x, y, inner_folds, *args, **kwargs):
        captured.update(x=np.array(x), folds=np.atleast_2d(inner_folds))
        return real(net, x, y, inner_folds, *args, **kwargs)

    monkeypatch.setattr(training, "fit_feature_linear", spy)
    cfg, _ = datamodule_for(["model=qemg", "split=loso", "data.fold=4"], tmp_path)
    training.train(cfg)
    _, datamodule = datamodule_for(["model=qemg", "split=loso", "data.fold=4"], tmp_path / "again")
    datamodule.setup()
    fold = datamodule.fold
    subject = datamodule.table.columns["subject"]
    fitting = np.isin(subject, [*fold.train, *fold.val])
    expected = np.asarray(datamodule.feature_table, dtype=np.float64)[fitting]

    # the rows it was fitted on are exactly the training + validation subjects' windows (in any order)
    def ordered(rows: np.ndarray) -> np.ndarray:
        return rows[np.lexsort(rows.T[::-1])]

    np.testing.assert_array_equal(ordered(captured["x"]), ordered(expected))
    assert captured["folds"].shape[1] == int(fitting.sum())
    # its standardisation: the mean and SD of those rows, recomputed here
    from emg_lightning.inference.predict import load_model

    net = load_model(tmp_path).classifiers[0].net
    np.testing.assert_allclose(net.mean.numpy(), expected.mean(axis=0), rtol=1e-5, atol=1e-6)
    sd = expected.std(axis=0)
    np.testing.assert_allclose(net.scale.numpy(), np.where(sd > 1e-12, sd, 1.0), rtol=1e-5, atol=1e-6)
    # and its inner folds split subjects, never a subject across two folds
    rows_subjects = np.concatenate([subject[datamodule.train_set.rows], subject[datamodule.val_set.rows]])
    for draw in captured["folds"]:
        for s in set(rows_subjects.tolist()):
            assert len(set(draw[rows_subjects == s].tolist())) == 1
