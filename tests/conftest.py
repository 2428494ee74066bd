"""Shared fixtures: an isolated window cache, W&B off, tiny synthetic data, the real data when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "conf"

# Overrides that make a training run take seconds: 6 subjects, 2 records of 3 s each at 2,343.75 Hz.
TINY_DATA = [
    "data.synthetic.subjects_per_class={normal:2,als:2,myopathy:2}",
    "data.synthetic.records_per_subject=[2,2]",
    "data.synthetic.duration_s=3.0",
    "data.sample_rate=2343.75",
    "trainer.max_epochs=2",
    "logger=none",
]


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory, monkeypatch):
    cache = tmp_path_factory.getbasetemp() / "window-cache"  # shared by the session: build each table once
    monkeypatch.setenv("EMG_CACHE_DIR", str(cache))
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_SILENT", "true")
    yield


@pytest.fixture
def emglab_dir() -> Path:
    """The EMGLab N2001 folder from EMGLAB_DIR; tests that need it skip with the reason when it is absent."""
    value = os.environ.get("EMGLAB_DIR")
    if not value:
        pytest.skip("real-data test: set EMGLAB_DIR to the emglab-n2001-bb folder (CI sets it)")
    path = Path(value)
    if not any(path.glob("*.hea")):
        pytest.skip(f"real-data test: EMGLAB_DIR={path} holds no .hea files")
    return path
