"""What a run leaves in its output folder, and what a rerun finds there: predictions.csv, the W&B run id, and
whether the folder holds a finished, an interrupted or no run of these settings."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from emg_lightning.data.datamodule import EMGDataModule
from emg_lightning.errors import ConfigError
from emg_lightning.files import atomic_write_text

# Settings that do not change a run's result: a rerun may differ in them (or a folder written before they existed may
# lack them) and still resume or skip the folder. malloc changes speed and memory, never a computed number; tags and
# print_config only label and show the run.
RUNTIME_KEYS = ("claim_device", "ckpt_path", "malloc", "tags", "print_config")


def write_predictions(path: Path, predictions: dict, datamodule: EMGDataModule, fold: int, seed: int | None) -> None:
    """One row per test window: who it is, its true and predicted class, and every class probability."""
    classes = datamodule.classes
    lines = [
        ",".join(["fold", "seed", "subject", "record", "window", "label", "predicted"] + [f"p_{c}" for c in classes])
    ]
    probabilities = predictions["probabilities"].numpy()
    for i, row in enumerate(probabilities):
        lines.append(
            ",".join(
                [
                    str(fold),
                    "" if seed is None else str(seed),
                    datamodule.subjects[int(predictions["subject"][i])],
                    datamodule.records[int(predictions["record"][i])],
                    str(int(predictions["window"][i])),
                    classes[int(predictions["y"][i])],
                    classes[int(row.argmax())],
                    *(f"{p:.6f}" for p in row),
                ]
            )
        )
    atomic_write_text(path, "\n".join(lines) + "\n")


def previous_run(out_dir: Path, settings: dict[str, Any]) -> str:
    """'fresh', 'finished' (metrics.json written) or 'resume' (last.ckpt but no metrics) for this output folder.

    Deterministic folders (emg-cv's fold_NN) make a rerun skip finished folds and resume interrupted ones; a folder
    holding a run with other settings is refused rather than mixed."""
    stored = out_dir / "config.yaml"
    if not stored.is_file():
        return "fresh"

    def what_matters(config: dict) -> dict:  # where and how the run was launched may change between attempts
        return {k: v for k, v in config.items() if k not in RUNTIME_KEYS}

    if what_matters(OmegaConf.to_container(OmegaConf.load(stored))) != what_matters(settings):
        raise ConfigError(
            f"{out_dir} already holds a run with other settings: use another output folder "
            f"(emg-cv: cv_dir=...) or delete that one"
        )
    if (out_dir / "metrics.json").is_file():
        return "finished"
    return "resume" if (out_dir / "checkpoints" / "last.ckpt").is_file() else "fresh"


def wandb_run_id(out_dir: Path) -> str:
    """One W&B run id per output folder, kept in the folder: a resumed or requeued run logs into the same run."""
    path = out_dir / "wandb_run_id"
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    run_id = uuid.uuid4().hex[:12]
    atomic_write_text(path, run_id + "\n")
    return run_id
