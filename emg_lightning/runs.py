"""What a run leaves in its output folder, and what a rerun finds there: predictions.csv, the W&B run id, and
whether the folder holds a finished, an interrupted or no run of these settings."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from emg_lightning.cv.identity import differing_keys, what_matters
from emg_lightning.runtime.errors import ConfigError
from emg_lightning.runtime.files import atomic_write_text

# Written when fit() has finished: a rerun that finds it (and no metrics.json) tests, it never trains on.
FIT_FINISHED = "fit_finished.json"
# What the trained network reads (rate, window, unit, normalization, features, classes): written by every run
MODEL_INPUT = "model_input.json"
# What Hydra and the start of a run write before any work (Hydra's log file is <task_name>.log).
LOCK = ".lock"
STARTUP_FILES = {".hydra", "train.log", "debug.log", "config_tree.log", LOCK}
# What a run writes about itself before its first checkpoint (settings, input contract, W&B run id, printed tree)
START_FILES = ("config.yaml", MODEL_INPUT, "wandb_run_id", "config_tree.log")
# Set by emg-cv for its fold jobs: a fold another process is training is left to it (emg-cv comes back for it at the
# end) instead of waited for, so two emg-cv processes on one folder share the folds
LEAVE_BUSY_FOLDS_ENV = "EMG_CV_LEAVE_BUSY_FOLDS"


class FoldBusy(Exception):
    """Another process holds this fold's lock, and the job was asked not to wait for it."""


def previous_run(out_dir: Path, settings: dict[str, Any]) -> str:
    """'fresh', 'finished' (metrics.json written), 'test' (fit finished, testing did not) or 'resume' (last.ckpt but
    no metrics) for this output folder.

    Deterministic folders (emg-cv's fold_NN) make a rerun skip finished folds and resume interrupted ones; a folder
    holding a run with other settings is refused rather than mixed, unless that run left nothing to mix with (no
    checkpoint, no result): its start files are then removed and the folder is fresh."""
    stored = out_dir / "config.yaml"
    if not stored.is_file():
        return "fresh"

    differ = differing_keys(what_matters(OmegaConf.to_container(OmegaConf.load(stored))), what_matters(settings))
    if differ:
        named = f"{', '.join(differ[:6])}{' ...' if len(differ) > 6 else ''}"
        if holds_results(out_dir):
            raise ConfigError(
                f"{out_dir} already holds a run with other settings ({named}): use another output folder "
                "(emg-cv: cv_dir=...) or delete that one"
            )
        # an earlier start refused after writing its settings, or stopped before its first checkpoint, left nothing
        # to mix with: the corrected command takes the folder (and a W&B run of its own)
        for name in START_FILES:
            (out_dir / name).unlink(missing_ok=True)
        print(
            f"{out_dir}: an earlier start with other settings ({named}) left no checkpoint or result: starting afresh",
            file=sys.stderr,
        )
        return "fresh"
    if (out_dir / "metrics.json").is_file():
        return "finished"
    if (out_dir / FIT_FINISHED).is_file():
        return "test"
    return "resume" if (out_dir / "checkpoints" / "last.ckpt").is_file() else "fresh"


def holds_results(out_dir: Path) -> bool:
    """Whether a run folder holds anything a run with other settings could be mixed with: a checkpoint, a finished
    fit or a test's metrics."""
    checkpoints = out_dir / "checkpoints"
    return (
        (out_dir / "metrics.json").is_file()
        or (out_dir / FIT_FINISHED).is_file()
        or (checkpoints.is_dir() and any(checkpoints.glob("*.ckpt")))
    )


def set_aside_unreadable_checkpoints(out_dir: Path) -> str | None:
    """Rename checkpoints that cannot be loaded (a run killed mid-write, a full disk) to ``*.corrupt-N``, so that
    the fold starts over instead of failing on every rerun; returns what was done, or None if all load."""
    unreadable = []
    for path in sorted((out_dir / "checkpoints").glob("*.ckpt")):
        try:
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated zip, bad pickle, empty file: all mean "not a checkpoint"
            n = 1
            while path.with_name(f"{path.name}.corrupt-{n}").exists():
                n += 1
            aside = path.with_name(f"{path.name}.corrupt-{n}")
            path.rename(aside)
            unreadable.append(f"{path.name} ({type(exc).__name__}) -> {aside.name}")
    if not unreadable:
        return None
    (out_dir / FIT_FINISHED).unlink(missing_ok=True)
    return f"unreadable checkpoint(s) in {out_dir / 'checkpoints'} set aside: {'; '.join(unreadable)}"


@contextlib.contextmanager
def fold_lock(out_dir: Path, wait: bool = True) -> Iterator[None]:
    """One process at a time trains a run folder (two terminals or two SLURM arrays on one CV folder): a second one
    waits, says so, and then finds the fold finished; with ``wait=False`` it raises ``FoldBusy`` instead. The kernel
    releases the lock when its process dies. Only the first process of a multi-process (DDP) run takes it: its other
    ranks run in the same folder on purpose."""
    if any(os.environ.get(rank, "0") != "0" for rank in ("RANK", "LOCAL_RANK", "SLURM_PROCID")):
        yield
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / LOCK, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            if not wait:
                raise FoldBusy(f"{out_dir}: another process (pid {holder}) is training this fold: left to it") from None
            print(f"{out_dir}: another process (pid {holder}) is training this fold: waiting for it", flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def busy_folds(cv_dir: Path) -> list[Path]:
    """The unfinished fold folders of a CV (no metrics.json) whose lock another process holds now."""
    busy = []
    for lock in sorted(cv_dir.glob(f"seed_*/fold_*/{LOCK}")):
        if (lock.parent / "metrics.json").is_file():
            continue
        try:
            with open(lock) as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    busy.append(lock.parent)
                else:
                    fcntl.flock(handle, fcntl.LOCK_UN)
        except OSError:  # not a lock file (damaged folder): nobody holds it, and the fold's own job reports it
            continue
    return busy


def wait_for_fold(out_dir: Path) -> None:
    """Block until the process training ``out_dir`` lets go of it (finished, failed or died)."""
    with open(out_dir / LOCK) as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        fcntl.flock(handle, fcntl.LOCK_UN)


def remove_if_untouched(out_dir: Path) -> None:
    """Remove a run folder that holds nothing but what Hydra wrote at start-up: a run refused before any work
    leaves no folder that looks like a run."""
    if out_dir.is_dir() and {p.name for p in out_dir.iterdir()} <= STARTUP_FILES:
        shutil.rmtree(out_dir, ignore_errors=True)


def wandb_run_id(out_dir: Path) -> str:
    """One W&B run id per output folder, kept in the folder: a resumed or requeued run logs into the same run."""
    path = out_dir / "wandb_run_id"
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    run_id = uuid.uuid4().hex[:12]
    atomic_write_text(path, run_id + "\n")
    return run_id
