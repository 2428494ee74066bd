"""Data-path benchmark: cold cache build, warm load, DataLoader windows/s versus ALSNet training windows/s.

    python -m emg_lightning.benchmarks.data_path --emglab /path/to/emglab-n2001-bb [--sample-rate 4687.5]
    python -m emg_lightning.benchmarks.data_path            # the synthetic data set instead

The cold build uses a fresh temporary cache folder; the recordings themselves may sit in the OS page cache.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from emg_lightning.data.datamodule import EMGDataModule
from emg_lightning.io import atomic_write_json
from emg_lightning.malloc import MALLOC_MODES, configure_malloc
from emg_lightning.models import ALSNet
from emg_lightning.train import compose_config


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emglab", help="EMGLab N2001 folder (default: the synthetic data set)")
    parser.add_argument("--sample-rate", type=float, default=None, help="resampling target (default: native)")
    parser.add_argument("--batch-size", type=int, default=48, help="ALSNet's batch size")
    parser.add_argument("--steps", type=int, default=3, help="timed ALSNet training steps")
    parser.add_argument("--malloc", default="reuse", choices=MALLOC_MODES, help="as emg-train's malloc=")
    parser.add_argument("--json", help="write the report here")
    args = parser.parse_args(argv)
    malloc = configure_malloc(args.malloc)
    source = data_source(args.emglab)
    with tempfile.TemporaryDirectory() as cache:
        make = lambda: EMGDataModule(**source, sample_rate=args.sample_rate, batch_size=args.batch_size,  # noqa: E731
                                     cache_dir=cache)
        cold, cold_s = timed(lambda: make().load_table())
        warm_dm = make()
        _, warm_s = timed(lambda: (warm_dm.load_table(), warm_dm.setup()))
        loader = loader_throughput(warm_dm)
        length = cold.windows.shape[1]
    train = alsnet_training_throughput(length, args.batch_size, args.steps, warm_dm.num_classes)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}",
        "malloc": malloc,
        "data": args.emglab or "synthetic (default spec)",
        "windows": len(cold), "window_samples": length, "sample_rate_hz": cold.sample_rate,
        "cache_bytes": int(cold.windows.nbytes),
        "cold_build_s": round(cold_s, 2), "warm_load_and_setup_s": round(warm_s, 3),
        "loader_windows_per_s": round(loader, 1), "alsnet_train_windows_per_s": round(train, 2),
        "loader_to_training_ratio": round(loader / train, 1),
    }
    width = max(map(len, report))
    for key, value in report.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        atomic_write_json(Path(args.json), report)


if __name__ == "__main__":
    main()
