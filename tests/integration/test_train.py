"""End to end: composed configs, a fast in-process run, real `emg-train` subprocesses, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate as hydra_instantiate

from emg_lightning.classifier import EMGClassifier
from emg_lightning.config import build_datamodule
from emg_lightning.training import train

from conftest import TINY_DATA, compose_train


@pytest.fixture(autouse=True)
def clear_hydra():
    yield
    GlobalHydra.instance().clear()


@pytest.mark.parametrize(
    "option",
    [
        "model=alsnet",
        "model=resemgnet",
        "data=emglab",
        "trainer=gpu",
        "logger=wandb",
        "logger=csv",
        "label_smoothing=fixed",
        "label_smoothing=schedule",
        "label_smoothing=confidence",
        "label_smoothing=online",
        "data=wfdb",
        "split=group_kfold",
        "split=fixed",
        "split=random_windows",
    ],
)
def test_every_config_option_composes(option, tmp_path):
    cfg = compose_train([option], tmp_path)
    assert cfg.data.fold == 0 and cfg.seed == 0
    assert cfg.split.name == (option.split("=")[1] if option.startswith("split=") else "loso")


@pytest.mark.slow
def test_fast_training_run_writes_metrics_and_a_reloadable_checkpoint(tmp_path):
    cfg = compose_train(TINY_DATA + ["model=alsnet", "label_smoothing=fixed", "data.fold=3"], tmp_path)
    metrics = train(cfg)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["test_subjects"] == metrics["test_subjects"] and len(on_disk["test_subjects"]) == 1
    assert on_disk["test_subjects"][0] not in on_disk["train_subjects"] + on_disk["val_subjects"]
    for key in ("test/acc", "test/bal_acc", "test/f1_macro"):
        assert 0.0 <= on_disk[key] <= 1.0
    confusion = on_disk["test/confusion"]
    assert sum(map(sum, confusion)) == on_disk["test_windows"] > 0
    assert (tmp_path / "config.yaml").is_file()
    rows = (tmp_path / "predictions.csv").read_text().splitlines()
    assert rows[0] == "fold,seed,subject,record,window,label,predicted,p_normal,p_als,p_myopathy"
    assert len(rows) - 1 == on_disk["test_windows"]
    cells = [r.split(",") for r in rows[1:]]
    assert {c[2] for c in cells} == set(on_disk["test_subjects"]) and {c[0] for c in cells} == {"3"}
    assert all(abs(sum(map(float, c[7:])) - 1) < 1e-4 for c in cells)
    correct = sum(c[5] == c[6] for c in cells) / len(cells)
    assert correct == pytest.approx(on_disk["test/acc"], abs=1e-6)  # metrics recomputable from the file
    best = Path(on_disk["best_checkpoint"])
    assert best.is_file() and (tmp_path / "checkpoints" / "last.ckpt").is_file()
    checkpoint = torch.load(best, weights_only=True)  # primitive hyperparameters only
    assert checkpoint["hyper_parameters"]["net"]["name"] == "alsnet"
    model = EMGClassifier.load_from_checkpoint(best)
    assert model(torch.randn(2, 1, 2343)).shape == (2, 3)


@pytest.mark.slow
@pytest.mark.parametrize("split, leaky", [("split=random_windows", True), ("split=group_kfold", False)])
def test_other_splits_train_and_say_whether_they_leak(split, leaky, tmp_path):
    cfg = compose_train(TINY_DATA + [split, "split.seed=1"] + (["split.k=3"] if not leaky else []), tmp_path)
    metrics = train(cfg)
    assert metrics["leaky"] is leaky
    if leaky:  # every subject is in the test set, and in training
        assert set(metrics["test_subjects"]) == set(metrics["train_subjects"]) and len(metrics["test_subjects"]) == 6
    else:
        assert len(metrics["test_subjects"]) == 2 and not set(metrics["test_subjects"]) & set(metrics["train_subjects"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "smoothing", ["label_smoothing=schedule", "label_smoothing=confidence", "label_smoothing=online"]
)
def test_adaptive_smoothing_trains_and_logs_its_epsilon(smoothing, tmp_path):
    cfg = compose_train(TINY_DATA + [smoothing, "logger=csv", "trainer.max_epochs=3"], tmp_path)
    train(cfg)
    lines = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()
    column = lines[0].split(",").index("train/label_smoothing_epsilon")
    values = [float(r.split(",")[column]) for r in lines[1:] if r.split(",")[column]]
    assert len(values) == 3 and all(0.0 <= v <= 0.75 for v in values)
    if smoothing.endswith("confidence"):
        assert all(v <= 0.2 + 1e-6 for v in values)
    if smoothing.endswith("online"):  # epoch 0: uniform S with alpha 0.5 moves 0.5 * (K-1)/K off the true class
        assert values[0] == pytest.approx(0.5, abs=1e-5)
    if smoothing.endswith("schedule"):  # linear decay from 0.2 over 3 epochs: 0.2, 0.133, 0.067
        assert values == pytest.approx([0.2, 0.2 * 2 / 3, 0.2 / 3], abs=1e-5)


@pytest.mark.parametrize(
    "experiment, split", [("resemgnet_loso_cpu", "loso"), ("resemgnet_random_windows_cpu", "random_windows")]
)
def test_experiment_configs_compose(experiment, split, tmp_path):
    cfg = compose_train([f"experiment={experiment}"], tmp_path)
    assert cfg.split.name == split and cfg.data.source == "emglab" and cfg.data.sample_rate == 2343.75
    assert cfg.model.net.name == "resemgnet" and cfg.experiment_name == experiment


@pytest.mark.parametrize(
    "experiment, split, model, classes, rate",
    [
        ("alsnet_paper", "random_windows", "alsnet", ["normal", "als"], None),
        ("alsnet_loso", "loso", "alsnet", ["normal", "als"], None),
        ("alsnet_loso_cpu", "loso", "alsnet", ["normal", "als"], 1171.875),
        ("resemgnet_loso", "loso", "resemgnet", ["normal", "als", "myopathy"], None),
        ("resemgnet_alsnet_lineage_loso", "loso", "resemgnet", ["normal", "als", "myopathy"], None),
        ("features_loso", "loso", "features", ["normal", "als", "myopathy"], None),
    ],
)
def test_reproduction_experiments_compose(experiment, split, model, classes, rate, tmp_path):
    cfg = compose_train([f"experiment={experiment}"], tmp_path)
    assert (cfg.experiment_name, cfg.split.name, cfg.model.net.name) == (experiment, split, model)
    assert list(cfg.data.classes) == classes and cfg.data.sample_rate == rate and cfg.data.source == "emglab"


@pytest.mark.parametrize("experiment", ["alsnet_paper", "alsnet_loso", "alsnet_loso_cpu"])
def test_alsnet_experiments_carry_the_papers_recipe(experiment, tmp_path):
    cfg = compose_train([f"experiment={experiment}"], tmp_path)
    assert dict(cfg.model.optimizer) == {"name": "adam", "lr": 1e-3, "eps": 1e-7, "weight_decay": 0.0}
    assert dict(cfg.model.scheduler) == {
        "name": "plateau",
        "monitor": "val/loss",
        "factor": 0.1,
        "patience": 5,
        "min_lr": 1e-10,
    }
    assert cfg.data.batch_size == 48 and cfg.data.normalization == "none" and cfg.label_smoothing.name == "none"
    assert cfg.test_weights == "last"  # the paper reports the final epoch's weights, not the best checkpoint
    stopping = hydra_instantiate(cfg.callbacks.early_stopping)
    assert (stopping.monitor, stopping.patience, stopping.mode) == ("val/loss", 25, "min")
    assert cfg.trainer.max_epochs == (6 if experiment.endswith("_cpu") else 100)
    model = EMGClassifier(
        net=dict(cfg.model.net),
        class_names=list(cfg.data.classes),
        optimizer=dict(cfg.model.optimizer),
        scheduler=dict(cfg.model.scheduler),
    )
    assert model.net.head.out_features == 1  # ALS vs Normal: the paper's single sigmoid output
    optimizers = model.configure_optimizers()
    adam, plateau = optimizers["optimizer"], optimizers["lr_scheduler"]["scheduler"]
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["eps"] == 1e-7 and adam.defaults["lr"] == 1e-3
    assert isinstance(plateau, torch.optim.lr_scheduler.ReduceLROnPlateau)
    assert (plateau.factor, plateau.patience, plateau.mode, plateau.min_lrs) == (0.1, 5, "min", [1e-10])


@pytest.mark.slow
def test_last_weights_are_the_final_epochs_and_features_get_the_datas_rate(tmp_path):
    """test_weights=last tests what fit() ended with (last.ckpt), not the best checkpoint."""
    cfg = compose_train(
        TINY_DATA + ["model=features", "test_weights=last", "trainer.max_epochs=3", "data.classes=[normal,als]"],
        tmp_path,
    )
    metrics = train(cfg)
    assert metrics["test_weights"] == "last" and metrics["class_names"] == ["normal", "als"]
    last = tmp_path / "checkpoints" / "last.ckpt"
    model = EMGClassifier.load_from_checkpoint(last).eval()
    assert model.hparams.net["sample_rate"] == 2343.75  # null in the config: filled in from the data
    # the final epoch even when the monitored metric stopped improving earlier (Lightning 2.6 save_last does not)
    assert torch.load(last, weights_only=True)["epoch"] == 2
    rows = [r.split(",") for r in (tmp_path / "predictions.csv").read_text().splitlines()[1:]]
    cfg_data = compose_train(TINY_DATA + ["data.classes=[normal,als]"], tmp_path)
    datamodule = build_datamodule(cfg_data)
    datamodule.setup()
    batch = next(iter(datamodule.test_dataloader()))
    with torch.no_grad():
        p_als = model(batch["x"]).softmax(-1)[:, 1]
    assert [float(r[8]) for r in rows[: len(p_als)]] == pytest.approx(p_als.tolist(), abs=1e-5)


def test_the_feature_baseline_is_standardised_with_its_training_windows_statistics(tmp_path):
    """Mean and standard deviation of every training window's features (not validation or test windows, not a
    running average of augmented batches), fixed before training and identical in training and evaluation."""
    import numpy as np

    from emg_lightning.features.basic import emg_features

    overrides = TINY_DATA + ["model=features", "trainer.max_epochs=1", "augmentation=standard"]
    cfg = compose_train(overrides, tmp_path)
    assert cfg.data.normalization == "none"  # the windows in microvolts, as computed by hand below
    train(cfg)
    net = EMGClassifier.load_from_checkpoint(tmp_path / "checkpoints" / "last.ckpt").net
    datamodule = build_datamodule(cfg)
    datamodule.setup()
    table = datamodule.table
    rows = np.flatnonzero(np.isin(table.columns["subject"], list(datamodule.fold.train)))
    windows = torch.from_numpy(table.windows[rows] / table.adc_gain).float()
    features = emg_features(windows, 2343.75).double().numpy()
    np.testing.assert_allclose(net.mean.double().numpy(), features.mean(axis=0), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(net.scale.double().numpy(), features.std(axis=0), rtol=1e-4)
    # nothing depends on the batch: a window alone in training mode gets what it gets in a batch in evaluation
    batch = windows[:8, None]
    with torch.no_grad():
        alone = net.train()(batch[:1])
        together = net.eval()(batch)[:1]
    torch.testing.assert_close(alone, together)


def test_compiled_network_keeps_checkpoint_keys():
    plain = EMGClassifier(net={"name": "resemgnet"})
    compiled = EMGClassifier(net={"name": "resemgnet"}, compile_net=True)
    assert list(compiled.state_dict()) == list(plain.state_dict())  # loadable without torch.compile
    assert compiled.hparams.compile_net is True and not any("_orig_mod" in k for k in compiled.state_dict())


@pytest.mark.parametrize("model", ["model=qemg", "model=alsnet"])
def test_training_weighted_by_subject_runs_and_changes_the_fit(model, tmp_path, capsys):
    # unequal records per subject (1 to 3): weighting by subject and by window must give different models
    unequal = [*TINY_DATA, "data.synthetic.records_per_subject=[1,3]", "trainer.max_epochs=1", model, "seed=1"]
    states = {}
    for weight_by in ("window", "subject"):
        train(compose_train([*unequal, f"data.weight_by={weight_by}"], tmp_path / weight_by))
        GlobalHydra.instance().clear()
        states[weight_by] = torch.load(tmp_path / weight_by / "checkpoints" / "last.ckpt", weights_only=True)
    out = capsys.readouterr().out
    if model == "model=qemg":
        assert "each subject weighted alike" in out and out.count("each subject weighted alike") == 1
    weights = [k for k in states["window"]["state_dict"] if k.endswith("weight")]
    assert any(
        not torch.allclose(states["window"]["state_dict"][k], states["subject"]["state_dict"][k]) for k in weights
    )


def test_testing_saved_weights_leaves_the_global_random_state_alone(tiny_models):
    """The checkpoint's saved random state continues a resumed fit (tests/e2e/test_resume.py); loading the weights to
    test or predict must not rewind the caller's sequence to the one saved at training time."""
    import lightning as L

    from emg_lightning.inference.predict import load_model

    run = tiny_models["run"]
    classifier = load_model(run).classifiers[0]
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert "rng_states" in checkpoint  # what a resumed fit restores
    classifier._trainer = trainer  # as during trainer.test(ckpt_path=...): not fitting
    classifier.on_load_checkpoint(checkpoint)
    classifier._trainer = None
    classifier.on_load_checkpoint(checkpoint)  # load_from_checkpoint: no trainer at all
    assert torch.equal(torch.rand(3), expected)
