"""The N2001 windows' qEMG features as the qEMG baseline sees them (``experiment=qemg_loso``), for the probe scripts
beside this file: one loading, from the configured data and the cached feature table."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir

from emg_lightning.config import build_datamodule

CONF = str(Path(__file__).resolve().parents[2] / "conf")


@dataclass
class QemgWindows:
    x: np.ndarray  # (windows, features), float64
    y: np.ndarray  # class index per window
    subject: np.ndarray
    record: np.ndarray
    classes: list[str]
    l2_grid: list[float]  # the baseline's penalty strengths
    windows_uv: np.ndarray  # (windows, samples) raw windows in microvolts, float32
    sample_rate: float


def load_qemg_windows() -> QemgWindows:
    """Every window of EMGLAB_DIR with the baseline's windowing and quality rules."""
    with initialize_config_dir(version_base="1.3", config_dir=CONF):
        cfg = compose("train", overrides=["experiment=qemg_loso", f"data.root={os.environ['EMGLAB_DIR']}"])
    datamodule = build_datamodule(cfg)
    datamodule.setup()
    columns = datamodule.table.columns
    return QemgWindows(
        x=np.asarray(datamodule.feature_table, dtype=np.float64),
        y=np.array([datamodule.classes.index(label) for label in columns["label"]]),
        subject=columns["subject"],
        record=columns["record"],
        classes=datamodule.classes,
        l2_grid=list(cfg.model.l2_grid),
        windows_uv=np.asarray(datamodule.table.windows, dtype=np.float32) / np.float32(datamodule.table.adc_gain),
        sample_rate=float(datamodule.table.sample_rate),
    )
