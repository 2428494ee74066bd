"""Nested hyperparameter search for a cross-validation: for each outer fold (and seed), a search that sees only that
fold's training subjects, then that fold trained with its own winner and tested on its held-out subjects.

The inner search is emg-train's own (``hparams_search=...``): every trial trains on the fold's training subjects,
selects on validation subjects drawn from them, and never tests (``run_test=false``); the outer run repeats the
search's configuration with the winning values, ``run_test=true`` and ``hparams_source=nested``. So no test subject
ever influences a choice, and the CV reports the outer folds. Each command runs as its own process, one at a time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from emg_lightning.errors import EMGLightningError

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
        return dict(yaml.safe_load(path.read_text())["best_params"])
    for failed in sorted(search_dir.glob("*/failed.json")):
        error = json.loads(failed.read_text()).get("error", "no reason recorded")
        raise EMGLightningError(
            f"the inner search in {search_dir} stopped: trial {failed.parent.name} failed ({error}); mend that "
            f"setting, then run emg-cv again"
        )
    raise EMGLightningError(
        f"the inner search in {search_dir} did not finish (no optimization_results.yaml): run the same command again"
    )


def run_nested(overrides: list[str], searched: list[str], n_folds: int, seeds: list[int], cv_dir: Path) -> None:
    jobs = [(seed, fold) for seed in seeds for fold in range(n_folds)]
    for done, (seed, fold) in enumerate(jobs):
        out = cv_dir / f"seed_{seed}" / f"fold_{fold:02d}"
        if (out / "metrics.json").is_file():
            print(f"[emg-cv] fold {fold}, seed {seed}: already finished, skipped", flush=True)
            continue
        search_dir = cv_dir / "search" / f"seed_{seed}" / f"fold_{fold:02d}"
        if not (search_dir / "optimization_results.yaml").is_file():
            print(
                f"[emg-cv] job {done + 1}/{len(jobs)}: inner search on the training subjects of fold {fold}, "
                f"seed {seed}",
                flush=True,
            )
            subprocess.run([*TRAIN, *overrides, f"data.fold={fold}", f"seed={seed}", f"hydra.sweep.dir={search_dir}"])
        values = best_values(search_dir)
        print(f"[emg-cv] fold {fold}, seed {seed}: chosen on inner validation: {values}", flush=True)
        chosen = [f"{key}={value}" for key, value in values.items()]
        subprocess.run(
            [
                *TRAIN,
                *outer_overrides(overrides, searched),
                *chosen,
                f"data.fold={fold}",
                f"seed={seed}",
                f"hydra.run.dir={out}",
            ]
        )
