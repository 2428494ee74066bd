"""Running a plan: every fold x seed as one Hydra multirun of emg-train (any launcher), sharing a folder with other
processes, then the report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from emg_lightning.cv.callbacks import TOTAL_JOBS_ENV
from emg_lightning.reports.cv_summary import report
from emg_lightning.runs import LEAVE_BUSY_FOLDS_ENV, busy_folds, wait_for_fold
from emg_lightning.runtime.errors import EMGLightningError


class SweepFailed(EMGLightningError):
    """The multirun ended with an error before any fold finished."""

    def __init__(self, returncode: int) -> None:
        super().__init__(f"the sweep failed (exit {returncode}) before any fold finished")
        self.returncode = returncode


def run_sweep(overrides: list[str], n_folds: int, seeds: list[int], cv_dir: Path) -> None:
    """Every fold x seed as one Hydra multirun of emg-train (any launcher). A fold that another process (a second
    emg-cv on this folder) is training is left to it; at the end emg-cv waits for those folds and runs the sweep
    again, which skips what the other process finished and trains what it left unfinished."""
    command = [
        sys.executable,
        "-m",
        "emg_lightning.cli.train",
        "-m",
        *overrides,
        f"data.fold={','.join(map(str, range(n_folds)))}",
        f"seed={','.join(map(str, seeds))}",
        f"hydra.sweep.dir={cv_dir}",
        "hydra.sweep.subdir='seed_${seed}/fold_${zfill:${data.fold}}'",
        "+hydra.callbacks.cv_progress._target_=emg_lightning.cv.callbacks.CVProgress",
    ]
    env = {**os.environ, TOTAL_JOBS_ENV: str(n_folds * len(seeds)), LEAVE_BUSY_FOLDS_ENV: "1"}
    while True:
        sweep = subprocess.run(command, env=env)
        if sweep.returncode != 0:  # interrupted or broken: report what there is, never wait on others
            if not any(cv_dir.rglob("metrics.json")):
                raise SweepFailed(sweep.returncode)
            return
        busy = busy_folds(cv_dir)
        if not busy:
            return
        for fold_dir in busy:
            print(f"[emg-cv] waiting for {fold_dir.relative_to(cv_dir)}: another process is training it", flush=True)
            wait_for_fold(fold_dir)


def summarise_cv(cfg: DictConfig, cv_dir: Path, name: str) -> dict:
    """The CV report, written into ``cv_dir`` (and logged to W&B when the run logs there)."""
    summary = report(cv_dir, name)
    if "wandb" in (cfg.get("logger") or {}):
        log_summary_to_wandb(cfg, summary, cv_dir)
    return summary


def log_summary_to_wandb(cfg: DictConfig, summary: dict, cv_dir: Path) -> None:
    """One W&B run of job type cv_summary in the experiment's group: pooled metrics, per-fold table, plots."""
    import wandb

    settings = OmegaConf.to_container(cfg.logger.wandb, resolve=False)
    try:
        run = wandb.init(
            project=settings.get("project"),
            group=cfg.experiment_name,
            job_type="cv_summary",
            name=f"{cfg.experiment_name}-cv-summary",
            dir=str(cv_dir),
            mode="offline" if settings.get("offline", True) else None,
            config={"split": summary["protocol"], "seeds": summary["seeds"], "n_folds": summary["n_folds"]},
        )
        for level, pooled in summary["pooled"].items():
            run.summary.update({f"{level}/{k}": v["mean"] for k, v in pooled["across_seeds"].items()})
        columns = ["seed", "fold", "n", "acc", "bal_acc", "f1_macro"]
        run.log(
            {
                "per_fold": wandb.Table(columns=columns, data=[[f[c] for c in columns] for f in summary["per_fold"]]),
                **{name[:-4]: wandb.Image(str(cv_dir / name)) for name in summary["plots"]},
            }
        )
    finally:
        wandb.finish()
