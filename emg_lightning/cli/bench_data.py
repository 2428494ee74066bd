"""Data-path benchmark: cold cache build, warm load, DataLoader windows/s versus ALSNet training windows/s.

    python -m emg_lightning.cli.bench_data --emglab /path/to/emglab-n2001-bb [--sample-rate 4687.5]
    python -m emg_lightning.cli.bench_data            # the synthetic data set instead

The cold build uses a fresh temporary cache folder; the recordings themselves may sit in the OS page cache.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from emg_lightning.benchmarks.data_path import measure_data_path
from emg_lightning.runtime.files import atomic_write_json
from emg_lightning.runtime.malloc import MALLOC_MODES, configure_malloc


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
    report = {"malloc": malloc, **measure_data_path(args.emglab, args.sample_rate, args.batch_size, args.steps)}
    width = max(map(len, report))
    for key, value in report.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        atomic_write_json(Path(args.json), report)


if __name__ == "__main__":
    main()
