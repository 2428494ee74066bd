"""What a lightning-hydra-template user reaches for: debug modes, TensorBoard and MLflow loggers, callback options,
a git-ignored local/ config, the printed config tree and run tags. Each runs the real emg-train command."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

from conftest import REPO, TINY_DATA, emg_train


@pytest.mark.slow
def test_debug_fdr_runs_one_batch_of_each_stage_into_the_debug_folder(tmp_path):
    result = emg_train(*TINY_DATA, "debug=fdr", f"paths.log_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Running in `fast_dev_run` mode" in result.stdout + result.stderr
    runs = list((tmp_path / "debug" / "runs").iterdir())
    assert len(runs) == 1
    metrics = json.loads((runs[0] / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and metrics["test_windows"] > 0
    assert yaml.safe_load((runs[0] / "config.yaml").read_text())["trainer"]["fast_dev_run"] is True


@pytest.mark.slow
def test_tensorboard_logger_writes_scalars_and_callbacks_none_still_trains(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = emg_train(*TINY_DATA, "logger=tensorboard", "callbacks=none", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    events = EventAccumulator(str(tmp_path / "tensorboard")).Reload()
    scalars = events.Tags()["scalars"]
    assert {"train/loss", "val/bal_acc", "test/acc"} <= set(scalars), scalars
    assert len(events.Scalars("val/bal_acc")) == 2  # one per epoch (trainer.max_epochs=2)
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert config["callbacks"] == {} and not (tmp_path / "checkpoints" / "last.ckpt").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """A real MLflow tracking server on the loopback interface with a SQLite store, stopped after the test."""
    pytest.importorskip("mlflow", reason="logger=mlflow needs the mlflow package (pip install -e '.[mlflow]')")
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'mlflow.db'}",
            "--default-artifact-root",
            str(tmp_path / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"the MLflow server did not start: {server.stderr.read()[-2000:]}")
        time.sleep(0.5)
    yield uri
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


@pytest.mark.slow
def test_mlflow_logger_logs_metrics_params_and_tags_to_a_tracking_server(mlflow_server, tmp_path):
    from mlflow.tracking import MlflowClient

    result = emg_train(
        *TINY_DATA,
        "logger=mlflow",
        "tags=[baseline,tiny]",
        "experiment_name=mlflow-test",
        f"hydra.run.dir={tmp_path}",
        env={"MLFLOW_TRACKING_URI": mlflow_server},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("mlflow-test")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert run.data.metrics["test/acc"] == pytest.approx(on_disk["test/acc"])
    assert "val/bal_acc" in run.data.metrics and run.data.params["seed"] == "0"
    assert {"baseline", "tiny"} <= set(run.data.tags)
    assert run.info.run_name == "mlflow-test-fold0-seed0"


@pytest.mark.slow
def test_local_config_group_the_config_tree_and_tags(tmp_path):
    local = tmp_path / "conf" / "local"
    local.mkdir(parents=True)
    # what a user keeps in conf/local/default.yaml (git-ignored): this machine's paths and habits
    (local / "default.yaml").write_text("# @package _global_\ndata:\n  batch_size: 7\n")
    out = tmp_path / "run"
    result = emg_train(
        *TINY_DATA, f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "tags=[smoke]", f"hydra.run.dir={out}"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["data"]["batch_size"] == 7 and config["tags"] == ["smoke"]
    tree = (out / "config_tree.log").read_text()
    assert "data" in tree and "batch_size: 7" in tree and "split" in tree
    assert "batch_size: 7" in result.stdout  # printed at the start of the run


def test_the_local_config_folder_is_git_ignored():
    ignored = subprocess.run(["git", "check-ignore", "-q", "conf/local/default.yaml"], cwd=REPO)
    assert ignored.returncode == 0
