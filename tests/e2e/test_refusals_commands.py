"""Never a wrong number, through the real commands: refusals that need a fresh interpreter (exit codes, no run folder
left behind, signals, the loading of modules)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, TINY_DATA


def emg(module: str, *args: str, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"emg_lightning.cli.{module}", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line_error(result: subprocess.CompletedProcess, code: int = 2) -> str:
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    return errors[0]


# -- non-finite numbers are never results -----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_diverging_run_stops_with_an_error_and_no_metrics(tmp_path):
    result = emg("train", *TINY_DATA, "model.optimizer.lr=1e12", f"hydra.run.dir={tmp_path}")
    line = one_line_error(result)
    assert "diverged" in line and "model.optimizer.lr" in line and "epoch" in line
    assert not (tmp_path / "metrics.json").exists() and not (tmp_path / "predictions.csv").exists()
    assert "diverged" in (tmp_path / "train.log").read_text()  # the run's log ends with the error


# -- labels are consistent or refused ---------------------------------------------------------------------------


# -- sampling rates are facts ----------------------------------------------------------------------------------------


def test_emglab_folder_with_an_odd_rate_header_is_refused(emglab_dir, tmp_path):
    folder = tmp_path / "emglab"
    folder.mkdir()
    for name in ("N2001A01BB01", "N2001C01BB51"):
        for suffix in (".hea", ".bin"):
            shutil.copy(emglab_dir / f"{name}{suffix}", folder)
    header = folder / "N2001C01BB51.hea"
    header.write_text(header.read_text().replace("23437.5", "4687.5", 1))
    result = emg("data", "data=emglab", f"data.root={folder}", "data.sample_rate=4687.5")
    assert "N2001C01BB51" in one_line_error(result) and "allow_mixed_rates" in result.stderr
    result = emg("data", "data=emglab", f"data.root={folder}", "data.sample_rate=4687.5", "data.allow_mixed_rates=true")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "N2001C01BB51: 4687.5 Hz" in result.stdout


# -- units, as real headers write them -------------------------------------------------------------------------------


# -- settings that cannot mean anything are refused before any work ---------------------------------------------------


def test_a_refused_command_line_leaves_no_run_folder(tmp_path):
    out = tmp_path / "run"
    result = emg("train", *TINY_DATA, "data.fold=abc", f"hydra.run.dir={out}")  # Hydra made the folder first
    assert "data.fold='abc'" in one_line_error(result) and not out.exists()


def test_duplicate_seeds_are_refused_before_any_job(tmp_path):
    result = emg("cv", *TINY_DATA, "seeds=[0,0]", f"cv_dir={tmp_path / 'cv'}")
    assert "seeds=[0,0]" in one_line_error(result) and not (tmp_path / "cv").exists()


# -- every rerun path ends somewhere ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_truncated_checkpoint_is_set_aside_and_the_fold_starts_over(tmp_path):
    first = emg("train", *TINY_DATA, "trainer.max_epochs=1", f"hydra.run.dir={tmp_path}")
    assert first.returncode == 0, first.stderr[-2000:]
    (tmp_path / "metrics.json").unlink()  # as if it had died after the last checkpoint
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    again = emg("train", *TINY_DATA, "trainer.max_epochs=1", f"hydra.run.dir={tmp_path}")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "unreadable" in again.stdout + again.stderr and "starts over" in again.stdout + again.stderr
    assert list((tmp_path / "checkpoints").glob("last.ckpt.corrupt*")) and (tmp_path / "metrics.json").is_file()


@pytest.mark.slow
def test_ctrl_c_prints_the_resume_hint(tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emg_lightning.cli.train",
            *TINY_DATA,
            "trainer.max_epochs=200",
            "callbacks.early_stopping.patience=1000",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell's background job starts with SIGINT ignored, and Python then never raises KeyboardInterrupt:
        # give the child the terminal's default whatever runs this test
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 240
    while not (tmp_path / "checkpoints" / "last.ckpt").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert "interrupted by Ctrl-C" in stderr and f"hydra.run.dir={tmp_path}" in stderr


def test_ctrl_c_while_a_command_loads_its_modules_is_one_line_not_a_traceback(tmp_path):
    # a module that takes the Ctrl-C while it is being imported, as a library does on a busy machine
    (tmp_path / "slow_library.py").write_text(
        "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(30)\n"
    )
    after = (
        "import os, signal, time\ntry:\n    os.kill(os.getpid(), signal.SIGINT); time.sleep(30)\n"
        "except KeyboardInterrupt:\n    print('handled')"
    )
    runs = {
        "loading": "import emg_lightning.cli\nimport slow_library",
        "running": f"import emg_lightning.cli\n{after}",  # once loaded, the command's own handling as before
    }
    results = {
        name: subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": f"{tmp_path}:{REPO}"},
            capture_output=True, text=True, timeout=60, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        for name, code in runs.items()
    }  # fmt: skip
    assert results["loading"].returncode == 130 and results["loading"].stderr == (
        "error: interrupted by Ctrl-C while the command was loading its modules (nothing had started)\n"
    )
    assert results["running"].returncode == 0 and results["running"].stdout.strip() == "handled"
