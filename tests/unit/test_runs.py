"""What a rerun finds in a run folder (emg_lightning.runs.previous_run): a start that left nothing behind gives way
to the corrected command; a folder with a checkpoint or a result of other settings is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from emg_lightning.runs import FIT_FINISHED, previous_run
from emg_lightning.runtime.errors import ConfigError

EARLIER = {"seed": 0, "model": {"net": {"name": "alsnet"}}, "data": {"batch_size": 32}}
CORRECTED = {**EARLIER, "data": {"batch_size": 4}}


def started(folder: Path) -> Path:
    """What a run writes before its first checkpoint, as a run refused after its start (too few batches for its
    processes) leaves it."""
    folder.mkdir(exist_ok=True)
    (folder / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(EARLIER)))
    (folder / "model_input.json").write_text("{}")
    (folder / "wandb_run_id").write_text("0123456789ab\n")
    (folder / "train.log").write_text("error: the training set's 18 windows make 1 batch(es) ...\n")
    return folder


def test_the_corrected_command_takes_a_folder_whose_start_left_no_checkpoint(tmp_path, capsys):
    folder = started(tmp_path / "run")
    assert previous_run(folder, CORRECTED) == "fresh"
    assert "left no checkpoint or result: starting afresh" in capsys.readouterr().err
    # the earlier settings and W&B run are not carried into the new run; Hydra's log stays
    assert sorted(p.name for p in folder.iterdir()) == ["train.log"]


def test_the_same_settings_after_a_start_without_checkpoint_is_fresh_and_keeps_its_files(tmp_path):
    folder = started(tmp_path / "run")
    assert previous_run(folder, EARLIER) == "fresh"
    assert (folder / "wandb_run_id").is_file() and (folder / "config.yaml").is_file()


@pytest.mark.parametrize("result", ["checkpoints/last.ckpt", "checkpoints/epoch=0.ckpt", FIT_FINISHED, "metrics.json"])
def test_a_folder_holding_a_checkpoint_or_a_result_of_other_settings_is_refused_and_kept(tmp_path, result):
    folder = started(tmp_path / "run")
    (folder / result).parent.mkdir(exist_ok=True)
    (folder / result).write_text("{}")
    with pytest.raises(ConfigError, match="already holds a run with other settings \\(data.batch_size\\)"):
        previous_run(folder, CORRECTED)
    assert (folder / "config.yaml").is_file() and (folder / "wandb_run_id").is_file()


def test_an_empty_checkpoints_folder_is_no_result(tmp_path):
    folder = started(tmp_path / "run")
    (folder / "checkpoints").mkdir()
    assert previous_run(folder, CORRECTED) == "fresh"
