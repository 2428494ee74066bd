"""Preemption safety: a run stopped by SIGTERM mid-epoch resumes from last.ckpt and ends where an uninterrupted
run ends (CPU, deterministic settings)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from emg_lightning.runs import previous_run
from emg_lightning.runtime.errors import ConfigError

from conftest import REPO, TINY_DATA

RUN = [
    *TINY_DATA,
    "model=alsnet",
    "data.batch_size=4",
    "trainer.max_epochs=6",
    "trainer.deterministic=true",
    "callbacks.early_stopping.patience=100",
    "logger=csv",
]


def emg_train(out_dir: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "emg_lightning.cli.train", *RUN, *extra, f"hydra.run.dir={out_dir}"],
        cwd=REPO,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def last_epoch(out_dir: Path) -> int:
    path = out_dir / "checkpoints" / "last.ckpt"
    try:
        return torch.load(path, weights_only=True)["epoch"]
    except (FileNotFoundError, RuntimeError, EOFError):
        return -1


def trained_epochs(out_dir: Path) -> list[int]:
    """Epochs with a training loss in the CSV log."""
    lines = (out_dir / "csv" / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    epoch, loss = header.index("epoch"), header.index("train/loss")
    return sorted({int(r.split(",")[epoch]) for r in lines[1:] if r.split(",")[loss]})


@pytest.mark.slow
def test_sigterm_mid_epoch_then_rerun_resumes_and_matches_an_uninterrupted_run(tmp_path):
    reference = emg_train(tmp_path / "reference")
    out, err = reference.communicate(timeout=600)
    assert reference.returncode == 0, err[-2000:]

    interrupted_dir = tmp_path / "interrupted"
    run = emg_train(interrupted_dir)
    deadline = time.time() + 300
    while last_epoch(interrupted_dir) < 1 and run.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)  # into the next epoch's batches
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=300)
    assert run.returncode == 143, err[-2000:]
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("error: interrupted by SIGTERM while training in epoch")
    assert f"hydra.run.dir={interrupted_dir}" in err
    assert not (interrupted_dir / "metrics.json").exists()  # no result that a later run could mistake for done
    stopped_at = last_epoch(interrupted_dir)
    assert 1 <= stopped_at < 5

    rerun = emg_train(interrupted_dir)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err[-2000:]
    assert "resuming from" in out
    epochs = trained_epochs(interrupted_dir)
    assert epochs[-1] == 5 and stopped_at + 1 in epochs and last_epoch(interrupted_dir) == 5  # the counter went on
    expected = json.loads((tmp_path / "reference" / "metrics.json").read_text())
    resumed = json.loads((interrupted_dir / "metrics.json").read_text())
    for key in ("test/acc", "test/bal_acc", "test/ece", "best_val_bal_acc", "epochs"):
        assert resumed[key] == pytest.approx(expected[key], abs=1e-6), key
    assert resumed["test/confusion"] == expected["test/confusion"]
    reference_rows = (tmp_path / "reference" / "predictions.csv").read_text()
    assert (interrupted_dir / "predictions.csv").read_text() == reference_rows


def test_a_rerun_in_the_same_folder_logs_into_the_same_wandb_run(tmp_path):
    from emg_lightning.runs import wandb_run_id

    first = wandb_run_id(tmp_path)
    assert len(first) == 12 and (tmp_path / "wandb_run_id").read_text().strip() == first
    assert wandb_run_id(tmp_path) == first
    assert wandb_run_id(tmp_path / "other") != first


def test_a_rerun_may_change_only_runtime_settings(tmp_path):
    """Where and how a run executes (the GPU it claimed, the allocator) is not part of what it computed: a rerun
    with another malloc, or a folder written before malloc existed, is still the same run; a model change is not."""
    settings = {"seed": 0, "model": {"net": {"name": "alsnet"}}, "claim_device": False, "malloc": "reuse"}
    older = {k: v for k, v in settings.items() if k != "malloc"}
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(older)))
    (tmp_path / "metrics.json").write_text("{}")
    assert previous_run(tmp_path, settings) == "finished"
    assert previous_run(tmp_path, {**settings, "malloc": "system", "claim_device": True}) == "finished"
    with pytest.raises(ConfigError, match="already holds a run with other settings"):
        previous_run(tmp_path, {**settings, "model": {"net": {"name": "resemgnet"}}})


def test_fold_lock_excludes_a_second_process_but_not_the_other_ranks_of_one_run(tmp_path, monkeypatch):
    import fcntl

    from emg_lightning.runs import LOCK, fold_lock

    with fold_lock(tmp_path):
        assert (tmp_path / LOCK).read_text().strip() == str(os.getpid())
        with open(tmp_path / LOCK) as other:  # another open file description: what a second process would hold
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        monkeypatch.setenv("LOCAL_RANK", "1")
        with fold_lock(tmp_path):  # a DDP rank > 0 does not wait for rank 0 (which holds the lock)
            pass
    with open(tmp_path / LOCK) as other:  # released on exit
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_busy_fold_can_be_left_and_found_again(tmp_path):
    import fcntl

    from emg_lightning.runs import LOCK, FoldBusy, busy_folds, fold_lock

    folds = [tmp_path / "seed_0" / f"fold_0{k}" for k in range(3)]
    for fold in folds:
        fold.mkdir(parents=True)
        (fold / LOCK).write_text("")
    (folds[2] / "metrics.json").write_text("{}")
    with open(folds[0] / LOCK, "a+") as held, open(folds[2] / LOCK, "a+") as finished:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("4242\n")
        held.flush()
        fcntl.flock(finished, fcntl.LOCK_EX)
        # a held fold without a result is busy; a free one is not; a finished one never is (its holder is testing)
        assert busy_folds(tmp_path) == [folds[0]]
        with pytest.raises(FoldBusy, match="another process \\(pid 4242\\) is training this fold: left to it"):
            with fold_lock(folds[0], wait=False):
                pass
        with fold_lock(folds[1], wait=False):  # a free fold is taken
            assert busy_folds(tmp_path) == [folds[0], folds[1]]
    assert busy_folds(tmp_path) == []
    (tmp_path / "seed_1" / "fold_00" / LOCK).mkdir(parents=True)  # a damaged folder: nobody can hold that "lock"
    assert busy_folds(tmp_path) == []
