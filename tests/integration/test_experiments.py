"""Every conf/experiment/*.yaml composes and runs a few batches end to end on the embedded synthetic data (the
experiment's own model, split, rate, recipe and test weights; only the data, device and length are swapped)."""

from __future__ import annotations

import json

import pytest
from hydra.core.global_hydra import GlobalHydra

from emg_lightning.training import train

from conftest import CONFIG_DIR, compose_train

EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
SMOKE = [
    "data=synthetic",
    "data.synthetic.subjects_per_class={normal:2,als:2,myopathy:2}",
    "data.synthetic.records_per_subject=[2,2]",
    "data.synthetic.duration_s=2.0",
    "data.batch_size=8",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=1",
    "logger=none",
    "print_config=false",
]


def test_there_are_experiments_to_smoke_test():
    assert {"alsnet_paper", "features_loso", "resemgnet_loso_cpu"} <= set(EXPERIMENTS)


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_runs_a_few_batches(experiment, tmp_path):
    try:
        cfg = compose_train([f"experiment={experiment}", *SMOKE], tmp_path)
        if cfg.split.name == "group_kfold":  # 2 folds of 12 subjects: each trains on 1 of a class, validates on 1
            GlobalHydra.instance().clear()
            more = ["data.synthetic.subjects_per_class={normal:4,als:4,myopathy:4}", "split.k=2"]
            cfg = compose_train([f"experiment={experiment}", *SMOKE, *more], tmp_path)
        metrics = train(cfg)
    finally:
        GlobalHydra.instance().clear()
    assert cfg.experiment_name == experiment
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["test_windows"] > 0 and 0.0 <= metrics["test/acc"] <= 1.0
    assert on_disk["split"] == cfg.split.name and on_disk["leaky"] == (cfg.split.name == "random_windows")
