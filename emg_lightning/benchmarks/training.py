"""What the framework costs against a hand-written PyTorch loop, and the data path against the model (the
library behind emg-bench; the command and what it measures: ``emg_lightning/cli/bench.py``)."""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import math
import multiprocessing
import resource
import statistics
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from emg_lightning.benchmarks.data_path import loader_throughput, timed
from emg_lightning.classifier import EMGClassifier, build_optimizer
from emg_lightning.config import build_classifier, compose_config
from emg_lightning.data.datamodule import EMGDataModule

MODELS = ("alsnet", "resemgnet", "features")
RATES = ("native", "cpu")
# (model, rate) -> (resampling target in Hz or None for native, CPU batch size; x8 on CUDA). "cpu" is each model's
# CPU-sized experiment: alsnet_loso_cpu, resemgnet_loso_cpu; the feature baseline's own CPU experiment
# (features_loso) runs at the native rate, so it has no separate "cpu" row. Native ALSNet takes ~0.1 s per window
# per step on 2 cores, hence its small native batch.
CONFIGURATIONS = {
    ("alsnet", "native"): (None, 8),
    ("alsnet", "cpu"): (1171.875, 48),
    ("resemgnet", "native"): (None, 16),
    ("resemgnet", "cpu"): (2343.75, 32),
    ("features", "native"): (None, 64),
}


@dataclass
class Setting:
    model: str
    rate: str
    sample_rate: float | None
    batch_size: int
    precision: str = "32"
    compiled: bool = False

    @property
    def label(self) -> str:
        extras = [self.precision] if self.precision != "32" else []
        return " ".join([self.model, self.rate, *extras, *(["compiled"] if self.compiled else [])])


class PlainLoop:
    """The hand-written loop: the same network (built from the same config), optimiser and batch size, over the
    training windows already in memory as one tensor (so the framework's cache reads count against it)."""

    def __init__(self, setting: Setting, datamodule: EMGDataModule, windows: torch.Tensor, labels: torch.Tensor):
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        classifier = benchmark_classifier(setting.model, datamodule, compiled=False)
        self.net = classifier.net.to(self.device).train()
        self.forward = torch.compile(self.net) if setting.compiled else self.net
        self.optimizer = build_optimizer(self.net.parameters(), classifier.optimizer_cfg)  # the framework's settings
        self.windows, self.labels, self.order = windows, labels, torch.randperm(len(windows))
        self.batch_size, self.bf16, self.steps = setting.batch_size, setting.precision == "bf16-mixed", 0

    def step(self) -> float:
        """One training step on the next batch; its wall-clock seconds."""
        start = time.perf_counter()
        index = self.order[(torch.arange(self.batch_size) + self.steps * self.batch_size) % len(self.windows)]
        x = self.windows[index].to(self.device, non_blocking=True)
        y = self.labels[index].to(self.device, non_blocking=True)
        with torch.enable_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.forward(x)
            if logits.shape[-1] == 1:  # ALSNet's binary head: sigmoid = softmax over [0, z]
                loss = F.binary_cross_entropy_with_logits(logits[:, 0], y.float())
            else:
                loss = F.cross_entropy(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.steps += 1
        return time.perf_counter() - start


class AlternatingClock(L.Callback):
    """Times each framework training step and runs one plain-loop step after it: the two alternate step by step,
    so a shared machine's slow phases (seconds long) slow both alike. A framework step runs from the end of the
    previous plain step to the end of its batch: data fetch, transfer, every hook, forward, loss, backward,
    optimiser step, and the epoch end when one falls in between."""

    def __init__(self, plain: PlainLoop) -> None:
        self.plain = plain
        self.framework_s: list[float] = []
        self.framework_windows: list[int] = []
        self.plain_s: list[float] = []
        self._since: float | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        now = time.perf_counter()
        if self._since is not None:  # the first step holds fit()'s start-up: not a step
            self.framework_s.append(now - self._since)
            self.framework_windows.append(len(batch["y"]))
            self.plain_s.append(self.plain.step())
        else:
            self.plain.step()
        self._since = time.perf_counter()


def peak_rss_mb() -> float | None:
    """This process's peak resident set size (Linux)."""
    try:
        line = next(r for r in Path("/proc/self/status").read_text().splitlines() if r.startswith("VmHWM"))
        return round(int(line.split()[1]) / 1024, 1)
    except (OSError, StopIteration):
        return None


def peak_rss_of_training(setting: Setting, source: dict[str, Any], cache: str, steps: int = 3) -> float | None:
    """Peak resident memory (MB) of a fresh process that builds this setting's data and model and trains a few
    framework steps: this process keeps the heap of every earlier row (malloc=reuse), so its own peak says nothing
    about one model. The child inherits the malloc setting through the environment."""
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool:
        return pool.submit(_train_and_report_peak_rss, setting, source, cache, steps).result()


def _train_and_report_peak_rss(setting: Setting, source: dict[str, Any], cache: str, steps: int) -> float | None:
    quiet_lightning()
    datamodule = make_datamodule(source, setting.sample_rate, setting.batch_size, cache)
    datamodule.setup()
    fit_trainer(setting, datamodule, steps, callbacks=[])
    return peak_rss_mb()


def quiet_lightning() -> None:
    """The report is the output: no Lightning banners, tips or warnings about the settings a benchmark uses on
    purpose (no validation loader, no logger)."""
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("lightning.fabric").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")


@functools.cache
def composed(group_option: str) -> DictConfig:
    """emg-train's configuration with one group option (``model=alsnet``), composed once per process."""
    return compose_config([group_option])


def benchmark_classifier(model: str, datamodule: EMGDataModule, compiled: bool) -> EMGClassifier:
    """emg-train's classifier for ``model=<model>``, without a learning-rate schedule (steps, not epochs)."""
    cfg = composed(f"model={model}").copy()
    cfg.model.scheduler = {"name": "none"}
    cfg.compile = compiled
    return build_classifier(cfg, datamodule)


def fit_trainer(setting: Setting, datamodule: EMGDataModule, steps: int, callbacks: list) -> None:
    """``Trainer.fit`` for ``steps`` batches with emg-train's trainer settings; validation, checkpoints, loggers
    and the progress bar off."""
    model = benchmark_classifier(setting.model, datamodule, setting.compiled)
    trainer_cfg = composed("trainer=gpu" if torch.cuda.is_available() else "trainer=cpu").trainer
    # max_steps, not one epoch: a measurement may span epochs, and pays the framework's epoch-end work when it does
    trainer = L.Trainer(
        accelerator=trainer_cfg.accelerator,
        devices=1,
        precision=setting.precision,
        max_steps=steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        log_every_n_steps=trainer_cfg.log_every_n_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    trainer.fit(model, train_dataloaders=datamodule.train_dataloader())


def training_figures(setting: Setting, datamodule: EMGDataModule, repeats: int, target_s: float) -> dict[str, Any]:
    """Framework and plain windows/s from ``repeats`` fits, each alternating framework and plain steps; steps
    sized so that one fit's framework steps take ~``target_s``. The first 2 pairs of each fit are warm-up."""
    batch = datamodule.train_set[np.arange(len(datamodule.train_set))]  # read once into memory for the plain loop
    windows, labels = batch["x"], batch["y"]
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    probe = PlainLoop(setting, datamodule, windows, labels)
    probe.step()
    steps = int(min(max(target_s / probe.step(), 3), 300))
    warmup = 2
    fits = []
    faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(repeats):
        clock = AlternatingClock(PlainLoop(setting, datamodule, windows, labels))
        fit_trainer(setting, datamodule, warmup + steps + 1, [clock])
        fits.append((clock.framework_windows[warmup:], clock.framework_s[warmup:], clock.plain_s[warmup:]))
    # minor page faults: what malloc=reuse removes (memory handed back to the kernel and faulted in again)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before) / (repeats * (warmup + steps + 1))
    framework_runs = [sum(w) / sum(f) for w, f, _ in fits]
    plain_runs = [len(p) * setting.batch_size / sum(p) for _, _, p in fits]
    framework = sum(sum(w) for w, _, _ in fits) / sum(sum(f) for _, f, _ in fits)
    plain = sum(len(p) for _, _, p in fits) * setting.batch_size / sum(sum(p) for _, _, p in fits)
    step_ratios = [(n / f) / (setting.batch_size / p) for w, fs, ps in fits for n, f, p in zip(w, fs, ps)]
    return {
        "steps": steps,
        "framework_windows_per_s": round(framework, 2),
        "plain_windows_per_s": round(plain, 2),
        "framework_to_plain": round(framework / plain, 3),
        "median_step_ratio": round(statistics.median(step_ratios), 3),
        "ratios": [round(f / p, 3) for f, p in zip(framework_runs, plain_runs)],
        "framework_runs": [round(f, 2) for f in framework_runs],
        "plain_runs": [round(p, 2) for p in plain_runs],
        "page_faults_per_step_pair": round(faults),
        **({"peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1)} if torch.cuda.is_available() else {}),
    }


def inference_latency_ms(setting: Setting, datamodule: EMGDataModule, batch_size: int, target_s: float) -> float:
    """Milliseconds per one-second window in eval mode, no gradients, at this batch size."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    net = benchmark_classifier(setting.model, datamodule, compiled=False).net.to(device).eval()
    x = datamodule.test_set[np.arange(min(batch_size, len(datamodule.test_set)))]["x"].to(device)
    x = x.repeat(math.ceil(batch_size / len(x)), 1, 1)[:batch_size]

    def once() -> float:
        start = time.perf_counter()
        with (
            torch.inference_mode(),
            torch.autocast(device.type, torch.bfloat16, enabled=setting.precision == "bf16-mixed"),
        ):
            net(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    once()
    first = once()
    times = [once() for _ in range(int(min(max(target_s / max(first, 1e-6), 3), 200)))]
    return round(1000 * statistics.median(times) / batch_size, 3)


def make_datamodule(source: dict[str, Any], sample_rate: float | None, batch_size: int, cache: str) -> EMGDataModule:
    return EMGDataModule.from_config({**source, "sample_rate": sample_rate, "batch_size": batch_size}, cache_dir=cache)


def run_benchmark(
    source: dict[str, Any],
    models: list[str],
    rates: list[str],
    repeats: int,
    target_s: float,
    cache: str,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """Every figure for every model x rate (x precision and compilation on CUDA); ``batch_size`` overrides
    the per-rate default."""
    settings: list[Setting] = []
    cuda = torch.cuda.is_available()
    for rate in rates:
        for model in models:
            if (model, rate) not in CONFIGURATIONS:
                continue
            sample_rate, default_batch = CONFIGURATIONS[model, rate]
            size = (batch_size or default_batch) * (8 if cuda else 1)  # GPUs need bigger batches
            settings.append(Setting(model, rate, sample_rate, size))
            if cuda:
                settings.append(Setting(model, rate, sample_rate, size, precision="bf16-mixed"))
                settings.append(Setting(model, rate, sample_rate, size, "bf16-mixed", compiled=True))
    report: dict[str, Any] = {"data": {}, "models": []}
    for sample_rate in sorted({s.sample_rate for s in settings}, key=lambda r: -(r or 1e9)):
        cold, cold_s = timed(lambda rate=sample_rate: make_datamodule(source, rate, 1, cache).load_table())
        warm = make_datamodule(source, sample_rate, 1, cache)
        _, warm_s = timed(lambda dm=warm: (dm.load_table(), dm.setup()))
        report["data"][f"{cold.sample_rate:g} Hz"] = {
            "sample_rate_hz": cold.sample_rate,
            "windows": len(cold),
            "window_samples": int(cold.windows.shape[1]),
            "cold_build_s": round(cold_s, 2),
            "warm_load_and_setup_s": round(warm_s, 3),
        }
    for setting in settings:
        print(f"[emg-bench] {setting.label} (batch {setting.batch_size}) ...", flush=True)
        datamodule = make_datamodule(source, setting.sample_rate, setting.batch_size, cache)
        datamodule.setup()
        loader = loader_throughput(datamodule)
        figures = training_figures(setting, datamodule, repeats, target_s)
        fold_windows = len(datamodule.train_set)
        row = {
            "model": setting.model,
            "rate": setting.rate,
            "sample_rate_hz": datamodule.sample_rate,
            "precision": setting.precision,
            "compiled": setting.compiled,
            "batch_size": setting.batch_size,
            **figures,
            "loader_windows_per_s": round(loader, 1),
            "loader_to_training": round(loader / figures["framework_windows_per_s"], 1),
            "latency_ms_batch1": inference_latency_ms(setting, datamodule, 1, target_s / 4),
            "latency_ms_batched": inference_latency_ms(setting, datamodule, setting.batch_size, target_s / 4),
            "peak_rss_mb": peak_rss_of_training(setting, source, cache),
            "fold_train_windows": fold_windows,
            "epoch_s_estimate": round(fold_windows / figures["framework_windows_per_s"], 3),
        }
        report["models"].append(row)
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"emg-bench, {report['date']}: {report['machine']}; data: {report['source']}",
        f"malloc: {report['malloc']}",
        "",
    ]
    for rate, d in report["data"].items():
        lines.append(
            f"cache at {rate}: {d['windows']} windows x {d['window_samples']} samples, cold build "
            f"{d['cold_build_s']} s, warm load + setup {d['warm_load_and_setup_s']} s"
        )
    header = (
        "model",
        "rate",
        "prec",
        "batch",
        "framework w/s",
        "plain w/s",
        "ratio",
        "loader w/s",
        "loader/train",
        "lat b1 ms",
        "lat bN ms",
        "peak MB",
        "faults/pair",
        "epoch s",
    )
    rows = [header]
    for r in report["models"]:
        batched = r["latency_ms_batched"]
        rows.append(
            (
                r["model"] + (" (compiled)" if r["compiled"] else ""),
                r["rate"],
                r["precision"],
                str(r["batch_size"]),
                f"{r['framework_windows_per_s']:g}",
                f"{r['plain_windows_per_s']:g}",
                f"{r['framework_to_plain']:.3f}",
                f"{r['loader_windows_per_s']:g}",
                f"{r['loader_to_training']:g}x",
                f"{r['latency_ms_batch1']:g}",
                f"{batched:g}",
                _figure(r.get("peak_gpu_mb", r.get("peak_rss_mb"))),
                str(r["page_faults_per_step_pair"]),
                f"{r['epoch_s_estimate']:g}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g}"
