"""Data-path benchmark: cold cache build, warm load, DataLoader windows/s versus ALSNet training windows/s (the
command: ``python -m emg_lightning.cli.bench_data``). The cold build uses a fresh temporary cache folder; the
recordings themselves may sit in the OS page cache.
"""

from __future__ import annotations

import platform
import tempfile
import time
from typing import Any

import torch

from emg_lightning.config import compose_config
from emg_lightning.data.datamodule import EMGDataModule
from emg_lightning.models import ALSNet


def data_source(emglab: str | None) -> dict[str, Any]:
    """EMGDataModule arguments for the benchmarks: EMGLab N2001 with emg-train's ``data=emglab`` trims, or (None)
    the embedded synthetic data set."""
    if not emglab:
        return {"source": "synthetic"}
    trims = compose_config(["data=emglab", f"data.root={emglab}"]).data.trim_after_s
    return {"source": "emglab", "root": emglab, "trim_after_s": dict(trims)}


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def loader_throughput(datamodule: EMGDataModule) -> float:
    """Windows per second for one full pass over the training loader (what an epoch reads)."""
    n, start = 0, time.perf_counter()
    for batch in datamodule.train_dataloader():
        n += len(batch["y"])
    return n / (time.perf_counter() - start)


def alsnet_training_throughput(length: int, batch_size: int, steps: int, num_classes: int) -> float:
    """Windows per second of ALSNet forward + backward + Adam step on random windows of this length."""
    net = ALSNet(num_classes=num_classes)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    x = torch.randn(batch_size, 1, length) * 30
    y = torch.randint(0, num_classes, (batch_size,))

    def step():
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - start)


def measure_data_path(emglab: str | None, sample_rate: float | None, batch_size: int, steps: int) -> dict[str, Any]:
    """Cold cache build, warm load and setup, loader windows/s and ALSNet training windows/s, with their ratio."""
    source = data_source(emglab)
    with tempfile.TemporaryDirectory() as cache:

        def make() -> EMGDataModule:
            return EMGDataModule.from_config(
                {**source, "sample_rate": sample_rate, "batch_size": batch_size}, cache_dir=cache
            )

        cold, cold_s = timed(lambda: make().load_table())
        warm_dm = make()
        _, warm_s = timed(lambda: (warm_dm.load_table(), warm_dm.setup()))
        loader = loader_throughput(warm_dm)
        length = cold.windows.shape[1]
    train = alsnet_training_throughput(length, batch_size, steps, warm_dm.num_classes)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}",
        "data": emglab or "synthetic (default spec)",
        "windows": len(cold),
        "window_samples": length,
        "sample_rate_hz": cold.sample_rate,
        "cache_bytes": int(cold.windows.nbytes),
        "cold_build_s": round(cold_s, 2),
        "warm_load_and_setup_s": round(warm_s, 3),
        "loader_windows_per_s": round(loader, 1),
        "alsnet_train_windows_per_s": round(train, 2),
        "loader_to_training_ratio": round(loader / train, 1),
    }
    return report
