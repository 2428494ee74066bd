"""Scale-out paths: SLURM (a real single-node cluster from scripts/local_slurm.sh), submitit's local executor,
joblib, requeue after SLURM's pre-timeout signal, DDP on the CPU, and GPU claiming. Tiny synthetic data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, TINY_DATA

pytestmark = pytest.mark.slow

# 12 subjects in 2 class-stratified folds (6 test, 3 validation, 3 training subjects each); deterministic training
DATA = [
    "data.synthetic.subjects_per_class={normal:4,als:4,myopathy:4}",
    "data.synthetic.records_per_subject=[2,2]",
    "data.synthetic.duration_s=3.0",
    "data.sample_rate=2343.75",
    "logger=none",
    "trainer.max_epochs=2",
    "trainer.deterministic=true",
]
TWO_FOLDS = ["split=group_kfold", "split.k=2"]
ONE_CPU_JOBS = ["hydra.launcher.cpus_per_task=1", "hydra.launcher.gpus_per_node=0"]
SLURM = ["launcher=slurm", *ONE_CPU_JOBS, "hydra.launcher.mem_gb=null", "hydra.launcher.timeout_min=20"]


def emg_cv(cv_dir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "emg_lightning.cli.cv", *DATA, *args, f"cv_dir={cv_dir}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def summary(cv_dir: Path) -> dict:
    data = json.loads((cv_dir / "cv_summary.json").read_text())
    return {"pooled": data["pooled"], "per_fold": data["per_fold"]}


def same_summary(a, b) -> bool:
    """Counts and class decisions exactly; continuous figures (AUROC, ECE, intervals) to 1e-5: jobs run with other
    thread counts sum floats in another order, moving probabilities in their 6th decimal (seen with the code of
    0.1.0 as with today's, on this 2-core machine)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_summary(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_summary(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, abs=1e-5)
    return a == b


@pytest.fixture(scope="module")
def sequential(tmp_path_factory) -> dict:
    cv_dir = tmp_path_factory.mktemp("sequential") / "cv"
    result = emg_cv(cv_dir, *TWO_FOLDS)
    assert result.returncode == 0, result.stderr[-3000:]
    return summary(cv_dir)


def slurm_cluster() -> str | None:
    """Name of the SLURM cluster this machine talks to, None when no controller answers."""
    if shutil.which("scontrol") is None:
        return None
    try:
        config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=10).stdout
    except subprocess.TimeoutExpired:
        return None
    names = [line.split("=", 1)[1].strip() for line in config.splitlines() if line.startswith("ClusterName")]
    return names[0] if names else None


@pytest.fixture(scope="module")
def local_slurm() -> None:
    """The single-node cluster of scripts/local_slurm.sh (CI starts it; `make slurm-up`). Started here when its
    packages are installed and we are root; test jobs never go to any other cluster."""
    cluster = slurm_cluster()
    if cluster not in (None, "emglocal"):
        pytest.skip(
            f"SLURM test: this machine talks to SLURM cluster {cluster!r}, not the local test cluster: "
            f"no test jobs are sent there"
        )
    if cluster is None:
        if os.geteuid() != 0:
            pytest.skip("SLURM test: no local SLURM running and not root to start one (as root: make slurm-up)")
        if shutil.which("slurmctld") is None or shutil.which("munged") is None:
            pytest.skip("SLURM test: slurm packages absent: `make slurm-up` installs and starts them (CI does)")
        started = subprocess.run(
            [str(REPO / "scripts" / "local_slurm.sh"), "up"], capture_output=True, text=True, timeout=300
        )
        if started.returncode != 0:
            pytest.skip(f"SLURM test: scripts/local_slurm.sh up failed: {(started.stderr or started.stdout).strip()}")


def test_slurm_job_array_cv_gives_the_sequential_summary(local_slurm, sequential, tmp_path):
    result = emg_cv(tmp_path / "cv", *TWO_FOLDS, *SLURM)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Submitit 'slurm' sweep output dir" in result.stdout + result.stderr
    assert len(list((tmp_path / "cv" / ".submitit").iterdir())) >= 2  # one SLURM job per fold
    assert same_summary(summary(tmp_path / "cv"), sequential)


def test_submitit_local_executor_cv_gives_the_sequential_summary(sequential, tmp_path):
    result = emg_cv(tmp_path / "cv", *TWO_FOLDS, "launcher=submitit_local", *ONE_CPU_JOBS)
    assert result.returncode == 0, result.stderr[-3000:]
    assert same_summary(summary(tmp_path / "cv"), sequential)


def test_local_parallel_cv_gives_the_sequential_summary(sequential, tmp_path):
    result = emg_cv(tmp_path / "cv", *TWO_FOLDS, "launcher=local_parallel", "hydra.launcher.n_jobs=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert same_summary(summary(tmp_path / "cv"), sequential)


def last_epoch(path: Path) -> int:
    try:
        return torch.load(path, weights_only=True)["epoch"]
    except (FileNotFoundError, RuntimeError, EOFError):
        return -1


def release_when_requeued(job_id: str, timeout_s: float = 120) -> None:
    """SLURM holds a requeued job for about two minutes before it may start again; the test makes it eligible at
    once (what is tested is that the resumed fold continues exactly, not SLURM's delay)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        state = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True).stdout
        if "PENDING" in state:
            subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], capture_output=True)
            return
        time.sleep(0.5)


def test_a_fold_signalled_before_its_time_limit_is_requeued_and_resumes(local_slurm, tmp_path):
    slow = [
        "model=alsnet",
        "data.batch_size=4",
        "trainer.max_epochs=5",
        "callbacks.early_stopping.patience=100",
        "split=fixed",
        "split.test_subjects=[SA01,SM01,SN01]",
    ]
    reference = emg_cv(tmp_path / "reference", *slow)
    assert reference.returncode == 0, reference.stderr[-3000:]

    cv_dir = tmp_path / "cv"
    command = [sys.executable, "-m", "emg_lightning.cli.cv", *DATA, *slow, *SLURM, f"cv_dir={cv_dir}"]
    sweep = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    fold = cv_dir / "seed_0" / "fold_00"
    deadline = time.time() + 600
    while last_epoch(fold / "checkpoints" / "last.ckpt") < 1 and time.time() < deadline and sweep.poll() is None:
        time.sleep(0.1)
    job_id = next(p.name for p in (cv_dir / ".submitit").iterdir() if p.is_dir() and p.name[0].isdigit())
    # what SLURM sends signal_delay_s before the time limit (submitit's --signal=USR2@delay), to the job's steps
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    release_when_requeued(job_id)
    out, err = sweep.communicate(timeout=900)
    assert sweep.returncode == 0, err[-3000:]
    logs = "".join(p.read_text() for p in (cv_dir / ".submitit").rglob("*.out")) + "".join(
        p.read_text() for p in (cv_dir / ".submitit").rglob("*.err")
    )
    assert "Caught signal SIGUSR2" in logs and "resuming from" in logs
    resumed = json.loads((fold / "metrics.json").read_text())
    expected = json.loads((tmp_path / "reference" / "seed_0" / "fold_00" / "metrics.json").read_text())
    for key in ("test/acc", "test/bal_acc", "test/ece", "best_val_bal_acc", "epochs"):
        assert resumed[key] == pytest.approx(expected[key], abs=1e-6), key
    assert (fold / "predictions.csv").read_text() == (
        tmp_path / "reference" / "seed_0" / "fold_00" / "predictions.csv"
    ).read_text()


def test_ddp_on_cpu_with_two_processes_trains_and_tests_one_fold(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "emg_lightning.cli.train",
            *TINY_DATA,
            "trainer=ddp_cpu",
            "data.batch_size=4",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distributed_backend=gloo" in result.stdout + result.stderr and "All distributed processes" in (
        result.stdout + result.stderr
    )
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    rows = (tmp_path / "predictions.csv").read_text().splitlines()[1:]
    # tested on one device: every test window once, none repeated by a distributed sampler
    assert len(rows) == metrics["test_windows"] == len({tuple(r.split(",")[2:5]) for r in rows}) == 6
    assert metrics["best_val_bal_acc"] is not None


def test_each_parallel_job_claims_a_gpu_of_its_own(tmp_path):
    from emg_lightning.runtime.devices import claim_device
    from emg_lightning.runtime.errors import ConfigError

    with claim_device(2, tmp_path) as first, claim_device(2, tmp_path) as second:
        assert {first, second} == {0, 1}
        with pytest.raises(ConfigError, match="no free GPU among 2"):
            with claim_device(2, tmp_path, timeout_s=0.2, poll_s=0.05):
                pass
    with claim_device(2, tmp_path) as again:  # released when the jobs end
        assert again == 0
    with pytest.raises(ConfigError, match="needs at least one GPU"):
        with claim_device(0, tmp_path):
            pass


def test_two_trial_optuna_search_optimises_validation_only_and_tabulates(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "emg_lightning.cli.train",
            "hparams_search=optuna",
            *TINY_DATA,
            "hydra.sweeper.n_trials=2",
            f"hydra.sweep.dir={tmp_path}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trials = sorted(p.name for p in tmp_path.glob("trial_*"))
    assert trials == ["trial_0", "trial_1"]
    for trial in trials:
        metrics = json.loads((tmp_path / trial / "metrics.json").read_text())
        assert metrics["tested"] is False and not any(k.startswith("test/") for k in metrics)  # test never seen
        assert not (tmp_path / trial / "predictions.csv").exists()
        assert 0.0 <= metrics["best_val_bal_acc"] <= 1.0
    table = (tmp_path / "search_results.md").read_text()
    assert (
        "| trial | best_val_bal_acc | model.optimizer.lr | label_smoothing.epsilon | model.net.width_multiplier |"
        in table
    )
    values = [json.loads((tmp_path / t / "metrics.json").read_text())["best_val_bal_acc"] for t in trials]
    rows = [line for line in table.splitlines() if line.startswith("| trial_")]
    assert len(rows) == 2 and float(rows[0].split("|")[2]) == pytest.approx(max(values), abs=1e-4)  # best first
    best = (tmp_path / "optimization_results.yaml").read_text()
    assert "best_value" in best


def search(tmp_path: Path, *overrides: str, data: list[str] = TINY_DATA) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "emg_lightning.cli.train", *data, *overrides, f"hydra.sweep.dir={tmp_path / 's'}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_search_offering_a_value_no_trial_could_run_is_refused_before_the_first_trial(tmp_path):
    refused = search(
        tmp_path, "hparams_search=optuna", 'hydra.sweeper.params={label_smoothing.epsilon:"interval(0.0, 1.5)"}'
    )
    assert refused.returncode == 2 and not (tmp_path / "s").exists()
    assert refused.stderr.strip() == (
        "error: hydra.sweeper.params.label_smoothing.epsilon offers 1.5, which no trial could run: "
        "label_smoothing.epsilon=1.5 must be in [0, 1): the share of target mass moved off the true class (1 would "
        "leave none on it)"
    )


@pytest.mark.parametrize(
    "overrides, reason",
    [
        # a width the network refuses only when a trial builds it (Optuna's TPE sampler)
        (
            ["hparams_search=optuna", 'hydra.sweeper.params={model.net.width_multiplier:"choice(-1.0)"}'],
            "width_multiplier must be > 0, got -1.0",
        ),
        # a rate above the records' own, known only once a trial reads them: the last (only) point of a grid, where
        # Optuna's grid sampler would stop the study outside an objective
        (
            ["model=qemg", "hparams_search=qemg_rate", 'hydra.sweeper.params={data.sample_rate:"choice(46875.0)"}'],
            "record SYNSN01R01 is recorded at 23437.5 Hz: data.sample_rate=46875 would invent bandwidth above its "
            "11718.8 Hz Nyquist frequency; choose data.sample_rate <= 23437.5",
        ),
    ],
)
def test_a_failed_trial_stops_the_search_with_one_line_naming_it_and_no_result(tmp_path, overrides, reason):
    # Optuna is never handed a NaN (it crashes the sweeper); the search stops without a winner
    any_rate = [
        setting for setting in TINY_DATA if not setting.startswith("data.sample_rate=")
    ]  # what a rate search needs
    data = any_rate if "hparams_search=qemg_rate" in overrides else TINY_DATA
    failed = search(tmp_path, *overrides, "hydra.sweeper.n_trials=1", data=data)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    trial = tmp_path / "s" / "trial_0"
    assert failed.stderr.strip().splitlines()[-1] == f"error: search trial {trial} failed: {reason}; the search stops"
    assert json.loads((trial / "failed.json").read_text())["error"] == reason
    assert not (tmp_path / "s" / "optimization_results.yaml").exists() and not (trial / "metrics.json").exists()


def test_emg_train_refuses_a_searched_key_fixed_on_the_command_line(tmp_path):
    refused = search(tmp_path, "model=qemg", "hparams_search=qemg_rate")  # TINY_DATA sets data.sample_rate=2343.75
    assert refused.returncode == 2 and not (tmp_path / "s").exists()
    assert refused.stderr.strip() == (
        "error: data.sample_rate=2343.75 fixes data.sample_rate, which the search explores: drop it to search it, "
        "or leave hparams_search out to run that value"
    )


def test_two_processes_report_what_one_process_computes(tmp_path):
    """DDP on two CPU processes: the validation figures logged (loss, balanced accuracy) are those of the whole
    validation set, each window once -- what one process computes with the same weights -- and Online Label
    Smoothing's statistics come from both processes' training windows."""
    import math

    import numpy as np
    from lightning import Trainer

    from emg_lightning.classifier import EMGClassifier
    from emg_lightning.config import build_datamodule

    from conftest import compose_train

    cfg = compose_train(TINY_DATA, tmp_path / "probe")
    probe = build_datamodule(cfg)
    probe.setup()
    n_train, n_val = len(probe.train_set), len(probe.val_set)

    def batches(n, b):
        return math.ceil(n / b)

    # an even number of training batches (none left over) and an odd number of validation batches (which a
    # distributed sampler would pad with a repeated batch)
    size = next(
        b
        for b in range(2, n_val)
        if batches(n_train, b) % 2 == 0 and n_train % b != 1 and batches(n_val, b) % 2 == 1 and batches(n_val, b) > 1
    )
    run = tmp_path / "ddp"
    overrides = [
        *TINY_DATA, "trainer=ddp_cpu", "model=features", "label_smoothing=online", "trainer.max_epochs=1",
        "model.optimizer.lr=1e-12",
        "model.scheduler.name=none", f"data.batch_size={size}", "logger=csv", "test_weights=last",
    ]  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "emg_lightning.cli.train", *overrides, f"hydra.run.dir={run}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    header, *lines = (run / "csv" / "metrics.csv").read_text().splitlines()
    logged = {}
    for line in lines:
        logged.update({k: float(v) for k, v in zip(header.split(","), line.split(",")) if v and k.startswith("val/")})
    model = EMGClassifier.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu")
    single = compose_train([*TINY_DATA, "model=features", f"data.batch_size={size}"], tmp_path / "single")
    datamodule = build_datamodule(single)
    datamodule.setup()
    one = Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False)
    (expected,) = one.validate(model, datamodule=datamodule, verbose=False)
    for key in ("val/loss", "val/bal_acc", "val/acc"):
        assert logged[key] == pytest.approx(expected[key], abs=1e-6), key

    # the smoothing statistics after the epoch: every training window's (the weights moved by about 1e-12)
    net = model.net.eval()
    x = torch.from_numpy(datamodule.table.windows[datamodule.train_set.rows] / datamodule.table.adc_gain).float()
    y = torch.from_numpy(datamodule.train_set.labels[datamodule.train_set.rows])
    with torch.no_grad():
        p = net(x[:, None]).softmax(-1).double()
    correct = p.argmax(-1) == y
    soft = torch.full((3, 3), 1 / 3, dtype=torch.float64)
    for c in range(3):
        if (correct & (y == c)).any():
            soft[:, c] = p[correct & (y == c)].sum(0) / p[correct & (y == c)].sum()
    np.testing.assert_allclose(model.online_smoothing.soft.double().numpy(), soft.numpy(), atol=1e-5)
