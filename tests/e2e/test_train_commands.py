"""emg-train through its command line: one-line errors for bad settings and a missing data root, and the exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hydra.core.global_hydra import GlobalHydra

from conftest import REPO, TINY_DATA


@pytest.fixture(autouse=True)
def clear_hydra():
    yield
    GlobalHydra.instance().clear()


def run_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    return subprocess.run(
        [sys.executable, "-m", "emg_lightning.cli.train", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_emg_train_subprocess_run(tmp_path):
    result = run_cli(*TINY_DATA, "model=resemgnet", "logger=csv", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "test subject(s)" in result.stdout and "true normal" in result.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["fold"] == 0 and (tmp_path / "csv" / "metrics.csv").is_file()
    log = (tmp_path / "train.log").read_text()
    assert "test results:" in log and "test/bal_acc" in log  # the run's log ends with the figures
    assert "Tip: For seamless cloud uploads" not in result.stdout + result.stderr  # adverts silenced


@pytest.mark.parametrize(
    "args, message",
    [
        (TINY_DATA + ["data.fold=99"], "error: data.fold=99 is out of range: split=loso has 6 folds (0..5)"),
        (
            ["data=emglab", "data.root=/nonexistent/emglab"],
            "error: EMGLab directory /nonexistent/emglab does not exist",
        ),
        (TINY_DATA + ["data.normalization=minmax"], "error: data.normalization='minmax' is unknown"),
        (TINY_DATA + ["model.optimizer.name=lion"], "error: model.optimizer.name='lion' is unknown"),
        (TINY_DATA + ["malloc=jemalloc"], "error: malloc='jemalloc' is unknown: use reuse"),
    ],
)
def test_bad_settings_give_one_clear_line(args, message, tmp_path):
    result = run_cli(*args, f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith(message), result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def test_missing_data_root_says_what_to_set(tmp_path, monkeypatch):
    monkeypatch.delenv("EMGLAB_DIR", raising=False)
    monkeypatch.setenv("EMG_DATA_DIR", str(tmp_path / "data"))  # nothing fetched there
    result = run_cli("data=emglab", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: data.root is not set and emglab-n2001 has not been fetched into {tmp_path / 'data'}: run "
        "`emg-data fetch emglab-n2001`, or pass data.root=/path/to/emglab-n2001-bb or set EMGLAB_DIR"
    )


def test_unknown_model_lists_the_options(tmp_path):
    result = run_cli("model=lstm", f"hydra.run.dir={tmp_path}")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "Could not find 'model/lstm'" in result.stderr and "alsnet" in result.stderr


@pytest.mark.slow
@pytest.mark.realdata
def test_emglab_smoke_run(emglab_dir, tmp_path):
    """Real recordings through the same path; 1 epoch, a few batches, at a fifth of the native rate."""
    result = run_cli(
        "data=emglab",
        f"data.root={emglab_dir}",
        "data.sample_rate=4687.5",
        "model=alsnet",
        "logger=none",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=3",
        "+trainer.limit_val_batches=2",
        "+trainer.limit_test_batches=2",
        "data.fold=21",
        f"hydra.run.dir={tmp_path}",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test_subjects"] == ["M07"]


def test_unknown_test_weights_is_one_clear_line(tmp_path):
    result = run_cli(*TINY_DATA, "test_weights=final", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: test_weights='final' is unknown")
