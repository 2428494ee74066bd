"""Nested hyperparameter search for a cross-validation: for each outer fold (and seed), a search that sees only that
fold's training subjects, then that fold trained with its own winner and tested on its held-out subjects.

The inner search is emg-train's own (``hparams_search=...``): every trial trains on the fold's training subjects,
selects on validation subjects drawn from them, and never tests (``run_test=false``); the outer run repeats the
search's configuration with the winning values, ``run_test=true`` and ``hparams_source=nested``. So no test subject
ever influences a choice, and the CV reports the outer folds. Each command runs as its own process; the outer folds
run one at a time, or several side by side (emg-cv ``nested_jobs=N``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import yaml

from emg_lightning.runtime.errors import EMGLightningError

TRAIN = [sys.executable, "-m", "emg_lightning.cli.train"]  # the command by module name: nothing imports it


def outer_overrides(overrides: list[str], searched: list[str]) -> list[str]:
    """The search's configuration as one training run that tests: what every outer fold shares."""
    return [
        *overrides,
        "hydra.mode=RUN",
        "run_test=true",
        "optimized_metric=null",
        "hparams_source=nested",
        f"hparams_searched=[{','.join(searched)}]",
    ]


def best_values(search_dir: Path) -> dict:
    """The winning values of a finished search (Hydra's optimization_results.yaml), as overrides' values; else an
    error that says why there are none: a trial that failed (its setting needs mending), or an interrupted search
    (running the same command again finishes it)."""
    path = search_dir / "optimization_results.yaml"
    if path.is_file():
        try:
            return dict(yaml.safe_load(path.read_text())["best_params"])
        except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
            raise EMGLightningError(
                f"{path} is damaged ({type(exc).__name__}): delete it, and the same command runs that search again"
            ) from exc
    for failed in sorted(search_dir.glob("*/failed.json")):
        try:
            error = json.loads(failed.read_text())["error"]
        except (ValueError, KeyError, TypeError):
            error = f"its {failed.name} is unreadable"
        raise EMGLightningError(
            f"the inner search in {search_dir} stopped: trial {failed.parent.name} failed ({error}); mend that "
            f"setting, then run emg-cv again"
        )
    raise EMGLightningError(
        f"the inner search in {search_dir} did not finish (no optimization_results.yaml): run the same command again"
    )


def run_nested(
    overrides: list[str],
    searched: list[str],
    n_folds: int,
    seeds: list[int],
    cv_dir: Path,
    parallel: int = 1,
    ranges: list[str] = (),
) -> None:
    """Every (seed, outer fold): its inner search (``ranges``: search ranges typed on the command line, for it only),
    then its training and test with the winner. ``parallel`` such
    pipelines at a time on this machine (each its own processes); the first that fails, or a Ctrl-C, stops the
    others (SIGTERM: they resume on the next run) and starts no more."""
    jobs = [(seed, fold) for seed in seeds for fold in range(n_folds)]
    children = RunningChildren()
    with ThreadPoolExecutor(max_workers=parallel) as pool:  # leaving it waits for the running pipelines
        futures = [
            pool.submit(
                _outer_fold, overrides, searched, seed, fold, cv_dir, f"{number}/{len(jobs)}", children, list(ranges)
            )
            for number, (seed, fold) in enumerate(jobs, 1)
        ]
        try:
            for future in as_completed(futures):
                future.result()
        except BaseException:  # a failed search or Ctrl-C: start nothing more, and stop what runs
            for future in futures:
                future.cancel()
            children.terminate()
            raise


class RunningChildren:
    """The emg-train processes the pipelines have running, so that one failure or a Ctrl-C stops them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen] = set()
        self._stopping = False

    def run(self, command: list[str]) -> None:
        with self._lock:
            if self._stopping:
                return
            process = subprocess.Popen(command)
            self._running.add(process)
        try:
            process.wait()
        finally:
            with self._lock:
                self._running.discard(process)

    def terminate(self) -> None:
        """SIGTERM to each (they stop cleanly and resume on the next run), and no new ones."""
        with self._lock:
            self._stopping = True
            for process in self._running:
                process.terminate()


def _outer_fold(
    overrides: list[str],
    searched: list[str],
    seed: int,
    fold: int,
    cv_dir: Path,
    number: str,
    children: RunningChildren,
    ranges: list[str],
) -> None:
    out = cv_dir / f"seed_{seed}" / f"fold_{fold:02d}"
    if (out / "metrics.json").is_file():
        print(f"[emg-cv] fold {fold}, seed {seed}: already finished, skipped", flush=True)
        return
    search_dir = cv_dir / "search" / f"seed_{seed}" / f"fold_{fold:02d}"
    if not (search_dir / "optimization_results.yaml").is_file():
        print(f"[emg-cv] job {number}: inner search on the training subjects of fold {fold}, seed {seed}", flush=True)
        children.run(
            [*TRAIN, *overrides, *ranges, f"data.fold={fold}", f"seed={seed}", f"hydra.sweep.dir={search_dir}"]
        )
    values = best_values(search_dir)
    print(f"[emg-cv] fold {fold}, seed {seed}: chosen on inner validation: {values}", flush=True)
    chosen = [f"{key}={value}" for key, value in values.items()]
    children.run(
        [
            *TRAIN,
            *outer_overrides(overrides, searched),
            *chosen,
            f"data.fold={fold}",
            f"seed={seed}",
            f"hydra.run.dir={out}",
        ]
    )
