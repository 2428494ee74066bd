"""Shared fixtures: an isolated window cache, W&B off, tiny synthetic data, the real data when present."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import wfdb

from emg_lightning.data.readers.synthetic import SyntheticSpec

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

# The synthetic records TINY_DATA generates (for tests that write them out as files)
TINY_SPEC = SyntheticSpec(
    subjects_per_class=(("normal", 2), ("als", 2), ("myopathy", 2)), records_per_subject=(2, 2), duration_s=3.0
)


def write_record(folder: Path, name: str, digital: np.ndarray, fs: float, gain: float, unit: str) -> Path:
    """A one-channel WFDB record of int16 samples (``digital``) with this gain and unit; its header's path."""
    wfdb.wrsamp(
        name, fs=fs, units=[unit], sig_name=["emg"], d_signal=digital.astype(np.int16)[:, None], fmt=["16"],
        adc_gain=[gain], baseline=[0], write_dir=str(folder),
    )  # fmt: skip
    return folder / f"{name}.hea"


def compose_train(overrides: list[str], output_dir: Path):
    """emg-train's configuration as Hydra composes it for a run, writing into ``output_dir`` (in-process runs)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


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


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.gpu`` tests run where CUDA exists and skip, saying why, where it does not."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (trainer=gpu, bf16, compile=true): torch sees none here")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def write_wfdb(folder, name, fs=4000, seconds=2.5, seed=0, saturate=False, unit="uV"):
    """One single-channel WFDB record of noise (gain 10 ADC units per ``unit``); returns its samples."""
    rng = np.random.default_rng(seed)
    d = np.round(rng.standard_normal((int(fs * seconds), 1)) * 400).astype(np.int16)
    if saturate:
        d[:50, 0] = -32768
    wfdb.wrsamp(
        name,
        fs=fs,
        units=[unit],
        sig_name=["emg"],
        d_signal=d,
        fmt=["16"],
        adc_gain=[10.0],
        baseline=[0],
        write_dir=str(folder),
        comments=["muscle: biceps"],
    )
    return d[:, 0]


def emg_train(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """The real emg-train command in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "emg_lightning.cli.train", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_cv(cv_dir: Path, p_right: dict[str, float], subjects: dict[str, tuple[int, str]], seed: int = 0) -> Path:
    """A finished CV folder: subject -> (fold, label), each subject 2 records x 2 windows; p_right[subject] is the
    probability the model gives the true class (a little less for the first window). Several seeds: call again
    with another ``seed`` (the plan lists every seed written)."""
    for subject, (fold, label) in subjects.items():
        folder = cv_dir / f"seed_{seed}" / f"fold_{fold:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "metrics.json").write_text(json.dumps({"fold": fold, "seed": seed, "split": "loso", "leaky": False}))
        other = "normal" if label == "als" else "als"
        lines = ["fold,seed,subject,record,window,label,predicted,p_normal,p_als"]
        for i in range(4):
            p = p_right[subject] if i else 0.5 + (p_right[subject] - 0.5) / 2
            predicted = label if p > 0.5 else other
            probs = {label: p, other: 1 - p}
            lines.append(
                f"{fold},{seed},{subject},{subject}_r{i // 2},{i},{label},{predicted},"
                f"{probs['normal']:.6f},{probs['als']:.6f}"
            )
        (folder / "predictions.csv").write_text("\n".join(lines) + "\n")
    plan = cv_dir / "cv_plan.json"
    seeds = sorted({*json.loads(plan.read_text())["seeds"], seed}) if plan.is_file() else [seed]
    plan.write_text(json.dumps({"folds": sorted({f for f, _ in subjects.values()}), "seeds": seeds, "settings": {}}))
    return cv_dir


# An untrained run folder as emg-train leaves it, for the commands that read one (export, explain)
RATE, SAMPLES, N_FEATURES = 2343.75, 2343, 88
CLASSES = ["normal", "als", "myopathy"]
NET_SETTINGS = {
    "features": {"sample_rate": RATE},
    "feature_linear": {"in_features": N_FEATURES},
    "feature_attention_mil": {"in_features": N_FEATURES},
}


def untrained_run(folder, name, seed=0, normalization="none"):
    """A run folder as a finished emg-train leaves it (config.yaml, model_input.json, checkpoints/last.ckpt,
    fit_finished.json), untrained."""
    from emg_lightning.classifier import EMGClassifier
    from emg_lightning.models import input_kind

    torch.manual_seed(seed)
    model = EMGClassifier(net={"name": name, **NET_SETTINGS.get(name, {})}, class_names=CLASSES)
    features = input_kind(name) == "features"
    (folder / "checkpoints").mkdir(parents=True)
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}
    torch.save({**checkpoint, "pytorch-lightning_version": L.__version__}, folder / "checkpoints" / "last.ckpt")
    (folder / "config.yaml").write_text(f"data:\n  normalization: {normalization}\n")
    info = {
        "sample_rate_hz": RATE, "window_s": 1.0, "window_samples": SAMPLES, "unit": "uV",
        "normalization": normalization, "features": "qemg" if features else None,
        "feature_names": [f"f{i}" for i in range(N_FEATURES)] if features else None, "classes": CLASSES,
    }  # fmt: skip
    (folder / "model_input.json").write_text(json.dumps(info))
    (folder / "fit_finished.json").write_text(json.dumps({"best_checkpoint": None, "epochs": 0}))
    return folder


def run_main(main, argv: list[str], capsys) -> tuple[int, str, str]:
    """A command's main() in-process (seconds faster than a subprocess): (exit code, stdout, stderr)."""
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def trained(folder: Path, *overrides: str) -> Path:
    """A run folder trained in process on TINY_DATA (one epoch)."""
    from hydra.core.global_hydra import GlobalHydra

    from emg_lightning.training import train

    try:
        train(compose_train([*TINY_DATA, "trainer.max_epochs=1", "print_config=false", *overrides], folder))
    finally:
        GlobalHydra.instance().clear()
    return folder


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """A run folder, and a CV folder of two LOSO fold runs (the layout emg-cv writes), trained once per session."""
    cv = tmp_path_factory.mktemp("models") / "cv"
    for fold in (0, 1):
        trained(cv / "seed_0" / f"fold_{fold:02d}", f"data.fold={fold}")
    return {"run": cv / "seed_0" / "fold_00", "cv": cv}


def motor_unit_signal(rate=23437.5, seconds=10.0, noise_uv=3.0, seed=0, units=None):
    """A needle-EMG-like signal whose motor units are known: each unit a MUAP shape (a Gaussian's first derivative
    of width ``width_ms`` plus a slower second derivative, ``amplitude_uv`` peak to peak) placed at regular
    discharges (``rate_hz``, interval CoV 0.1), in white noise. Returns (signal in uV, [discharge samples per
    unit]), each discharge timed at its shape's main peak (EMGLAB's convention)."""
    rng = np.random.default_rng(seed)
    units = units or [
        {"amplitude_uv": 400.0, "width_ms": 0.5, "rate_hz": 9.0, "sign": 1.0},
        {"amplitude_uv": 250.0, "width_ms": 0.3, "rate_hz": 12.0, "sign": -1.0},
    ]
    n = int(rate * seconds)
    signal = rng.standard_normal(n) * noise_uv
    times = []
    for unit in units:
        t = np.arange(-int(0.01 * rate), int(0.01 * rate) + 1) / rate * 1e3  # ms
        w = unit["width_ms"]
        shape = -t / w * np.exp(-(t**2) / (2 * w**2)) + 0.3 * (1 - (t / (2 * w)) ** 2) * np.exp(-(t**2) / (8 * w**2))
        shape = unit["sign"] * unit["amplitude_uv"] * shape / np.ptp(shape)
        interval = rate / unit["rate_hz"]
        position, discharges = rng.uniform(0, interval), []
        while position < n - len(t):
            discharges.append(int(position))
            position += interval * (1 + 0.1 * rng.standard_normal())
        for d in discharges:
            signal[d : d + len(t)] += shape
        times.append(np.array(discharges) + int(np.argmax(np.abs(shape))))
    return signal, times
