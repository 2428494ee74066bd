"""emg-bench: what the framework costs against a hand-written PyTorch loop, and the data path against the model.

    emg-bench                                   # synthetic data, every model, native and CPU-sized rates
    emg-bench --emglab /path/to/emglab-n2001-bb --json experiments/benchmarks.json
    emg-bench --models resemgnet --rates cpu    # a subset

Configurations: "native" = 1-s windows at 23,437.5 Hz; "cpu" = each model's CPU-sized experiment (alsnet_loso_cpu at
1,171.875 Hz, resemgnet_loso_cpu at 2,343.75 Hz; features_loso already runs at the native rate). For each, in one
process:
- training windows/s through the framework's real path (EMGClassifier + EMGDataModule + ``Trainer.fit`` with the
  emg-train configuration's trainer, training metrics and logging calls; validation, checkpoints and loggers off)
  and through a plain loop (the same network, batch size, optimiser and windows, already in memory as one tensor),
  alternating step by step inside ``--repeats`` fits (after each framework step, one plain step), so that a shared
  machine's slow phases hit both alike; the ratio of the two throughputs over all step pairs, the median of the
  per-step ratios, and each fit's ratio;
- DataLoader windows/s from the cache alone, and its ratio to the framework's training windows/s;
- inference latency per one-second window (batch 1, and batched); peak resident memory of a fresh process that
  trains the setting (a few framework steps);
- cache cold build and warm load times.
On a CUDA machine each model also gets bf16 mixed precision and compiled (``torch.compile``) variants, GPU peak
memory, and the time per epoch of a full LOSO fold at the measured speed.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

from emg_lightning.benchmarks.data_path import data_source
from emg_lightning.benchmarks.training import MODELS, RATES, format_report, quiet_lightning, run_benchmark
from emg_lightning.runtime.files import atomic_write_json
from emg_lightning.runtime.malloc import MALLOC_MODES, configure_malloc


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emglab", help="EMGLab N2001 folder (default: the embedded synthetic data set)")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {','.join(MODELS)}")
    parser.add_argument(
        "--rates", default=",".join(RATES), help="native (23,437.5 Hz) and/or cpu (each model's CPU-sized experiment)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="fits per setting, each alternating framework and plain steps"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=4.0,
        help="framework training time per fit (the plain steps take about as long again)",
    )
    parser.add_argument("--batch-size", type=int, help="one batch size for all (default: per model and rate)")
    parser.add_argument(
        "--malloc",
        default="reuse",
        choices=MALLOC_MODES,
        help="CPU allocator setting, as emg-train's malloc= (default reuse; system = before it)",
    )
    parser.add_argument("--json", help="also write the report here (JSON)")
    args = parser.parse_args(argv)
    models, rates = args.models.split(","), args.rates.split(",")
    for name, values, allowed in (("--models", models, MODELS), ("--rates", rates, RATES)):
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            parser.error(f"{name}: unknown {', '.join(unknown)}; choose from {', '.join(allowed)}")
    if args.emglab and not any(Path(args.emglab).glob("*.hea")):
        parser.error(f"--emglab {args.emglab}: no .hea files there; pass the emglab-n2001-bb folder")
    if args.repeats < 1 or (args.batch_size is not None and args.batch_size < 1):
        parser.error("--repeats and --batch-size must be >= 1")
    source = data_source(args.emglab)
    malloc = configure_malloc(args.malloc)
    quiet_lightning()
    torch.manual_seed(0)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        report = run_benchmark(source, models, rates, args.repeats, args.seconds, cache, args.batch_size)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "source": args.emglab or "synthetic (default spec)",
        "machine": f"{platform.machine()} {device}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, lightning {L.__version__}",
        "malloc": malloc,
        "command": "emg-bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        **report,
        "total_s": round(time.perf_counter() - started, 1),
    }
    print(format_report(report))
    print(f"total {report['total_s']} s")
    if args.json:
        atomic_write_json(Path(args.json), report)
        print(f"report: {args.json}")


if __name__ == "__main__":
    main()
