"""Hydra callbacks that watch a multirun: emg-cv's progress lines, and a hyperparameter search's results table
(one row per trial, best objective first); and what a search trial tells the sweeper: its objective, or why not."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from hydra.errors import CompactHydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from emg_lightning.config import check_search
from emg_lightning.runtime.errors import EMGLightningError
from emg_lightning.runtime.files import atomic_write_text

# emg-cv tells its progress callback how many jobs the sweep has
TOTAL_JOBS_ENV = "EMG_CV_TOTAL_JOBS"


class CVProgress(Callback):
    """Prints which fold of how many runs, each finished fold's key metric, and the time left (Hydra callback)."""

    def __init__(self) -> None:
        self.total = int(os.environ.get(TOTAL_JOBS_ENV, "0"))
        self.done = 0
        self.started = time.monotonic()

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        print(
            f"[emg-cv] job {self.done + 1}/{self.total or '?'}: fold {config.data.fold}, seed {config.seed}", flush=True
        )

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        self.done += 1
        out = Path(config.hydra.runtime.output_dir)
        if (out / "metrics.json").is_file():
            bal_acc = json.loads((out / "metrics.json").read_text()).get("test/bal_acc")
            outcome = f"test bal_acc {bal_acc:.3f}" if isinstance(bal_acc, float) else "done"
        elif (out / "failed.json").is_file():
            outcome = "FAILED (see failed.json)"
        else:
            outcome = "left to the process training it"
        elapsed = time.monotonic() - self.started
        left = (self.total - self.done) * elapsed / self.done if self.total else float("nan")
        print(
            f"[emg-cv] {self.done}/{self.total or '?'} done: fold {config.data.fold}, seed {config.seed}: {outcome}; "
            f"elapsed {_duration(elapsed)}, about {_duration(left)} left",
            flush=True,
        )


class TrialFailed(EMGLightningError, CompactHydraException):
    """A search trial without a usable objective. Raised, not returned as NaN (a NaN objective crashes
    hydra-optuna-sweeper 1.3 with optuna 2.10 in a traceback: Hydra issue 2237): the search stops there, in one line
    (``SearchGuard``, or the sweeper, which records the trial as failed and re-raises it for Hydra to print)."""


class SearchGuard(Callback):
    """A search's one-line refusals and failures. Before the first trial: refuse a search that cannot mean what it
    says (``check_search``: a searched key fixed on the command line, no searched key, a candidate value every trial
    of it would refuse), exit 2. After a trial that failed (``TrialFailed``) in the sweeper's own process (the
    sequential launcher): its line, exit 1, before the sweeper tells Optuna (whose grid sampler, on a grid's last
    trial, raises outside any objective: a traceback under hydra-optuna-sweeper 1.3). Under other launchers the
    sweeper itself stops on the failure. Both exit rather than raise: Hydra turns a callback's exceptions into
    warnings and goes on."""

    def __init__(self) -> None:
        self.sweeper_pid: int | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.sweeper_pid = os.getpid()
        composed = config.copy()
        composed.paths.output_dir = "."  # a trial's own folder: not known before it starts
        try:
            check_search(composed, list(config.hydra.overrides.task))
        except EMGLightningError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        failure = getattr(job_return, "_return_value", None)  # a failed job's exception (return_value re-raises it)
        if isinstance(failure, TrialFailed) and os.getpid() == self.sweeper_pid:
            print(f"error: {failure}", file=sys.stderr, flush=True)
            sys.exit(1)


def trial_objective(metrics: dict[str, Any] | None, metric: str, out_dir: Path) -> float:
    """The value of ``metric`` in a finished trial's metrics, or TrialFailed naming the trial and the reason (its
    failed.json's error where it failed)."""
    failed = out_dir / "failed.json"
    if metrics is None:
        reason = json.loads(failed.read_text())["error"] if failed.is_file() else "it did not finish"
        raise TrialFailed(f"search trial {out_dir} failed: {reason}; the search stops")
    value = metrics.get(metric)
    if value is None or not math.isfinite(float(value)):
        found = "has no" if value is None else f"has a non-finite ({value})"
        raise TrialFailed(
            f"search trial {out_dir} {found} optimized_metric={metric} in its metrics.json; the search stops"
        )
    return float(value)


def _duration(seconds: float) -> str:
    if seconds != seconds:  # NaN: total unknown
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{secs:02d}s"


def search_rows(sweep_dir: Path, metric: str, direction: str = "maximize") -> list[dict[str, Any]]:
    """Each trial's swept values and objective, read from its folder (.hydra/overrides.yaml + metrics.json), best
    first for the sweeper's ``direction`` (``maximize`` or ``minimize``), failed trials last."""
    rows = []
    for overrides_file in sorted(sweep_dir.glob("*/.hydra/overrides.yaml")):
        trial = overrides_file.parent.parent
        overrides = yaml.safe_load(overrides_file.read_text()) or []
        metrics_file = trial / "metrics.json"
        value = json.loads(metrics_file.read_text()).get(metric) if metrics_file.is_file() else None
        rows.append(
            {
                "trial": trial.name,
                "objective": math.nan if value is None else float(value),
                **dict(o.split("=", 1) for o in overrides if "=" in o),
            }
        )
    sign = -1.0 if direction == "maximize" else 1.0
    return sorted(
        rows, key=lambda r: (math.isnan(r["objective"]), 0.0 if math.isnan(r["objective"]) else sign * r["objective"])
    )


def _short(value: Any) -> str:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)


def format_rows(rows: list[dict[str, Any]], metric: str, keys: list[str]) -> str:
    """Markdown table: trial, objective, then the ``keys`` (the swept parameters)."""
    lines = [f"| trial | {metric} | " + " | ".join(keys) + " |", "|---" * (len(keys) + 2) + "|"]
    for row in rows:
        value = "failed" if math.isnan(row["objective"]) else f"{row['objective']:.4f}"
        lines.append(f"| {row['trial']} | {value} | " + " | ".join(_short(row.get(k, "")) for k in keys) + " |")
    return "\n".join(lines)


class SearchResults(Callback):
    def __init__(self, metric: str = "best_val_bal_acc") -> None:
        self.metric = metric

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = search_rows(sweep_dir, self.metric, config.hydra.sweeper.get("direction", "maximize"))
        swept = [str(k) for k in (config.hydra.sweeper.get("params") or {})]
        table = format_rows(rows, self.metric, swept)
        header = (
            f"# Hyperparameter search: {len(rows)} trials, objective {self.metric}, best first (scored on the "
            f"non-test subjects only; test subjects not evaluated)\n\n"
        )
        atomic_write_text(sweep_dir / "search_results.md", header + table + "\n")
        keys = ["trial", "objective", *swept]
        csv = [",".join(keys)] + [",".join(str(r.get(k, "")) for k in keys) for r in rows]
        atomic_write_text(sweep_dir / "search_results.csv", "\n".join(csv) + "\n")
        print(f"\n{header}{table}\n\nwritten: {sweep_dir}/search_results.md, search_results.csv")
