"""emg-cv: every fold (and seed) of a configuration as one Hydra multirun, then the CV report.

    emg-cv split=loso                                     # all LOSO folds, seed 0
    emg-cv split=group_kfold split.k=5 seeds=[0,1,2]       # 5 folds x 3 seeds
    emg-cv model=alsnet data=emglab cv_dir=logs/cv/alsnet  # choose the folder (default logs/cv/<name>-<split>)

Takes the same overrides as emg-train. Folds land in ``<cv_dir>/seed_<s>/fold_<NN>``; running the same command
again skips finished folds and resumes an interrupted one from its ``last.ckpt``. A failing fold is recorded
(``failed.json``) and the others go on. Hydra launcher overrides (``hydra/launcher=...``) apply unchanged.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from emg_lightning.config import USER_ERRORS, build_datamodule, compose_config
from emg_lightning.data.splits import fold_test_subjects
from emg_lightning.errors import ConfigError
from emg_lightning.reports.cv_summary import markdown, report
from emg_lightning.sweeps import TOTAL_JOBS_ENV


def _take(overrides: list[str], key: str) -> tuple[str | None, list[str]]:
    """Remove ``key=value`` (emg-cv's own settings) from the overrides."""
    values = [o.split("=", 1)[1] for o in overrides if o.startswith(f"{key}=")]
    return (values[-1] if values else None), [o for o in overrides if not o.startswith(f"{key}=")]


def plan(overrides: list[str]) -> tuple[DictConfig, int, list[int], list[str]]:
    """Composed config, number of folds, seeds, and the overrides that go on to emg-train."""
    seeds_text, overrides = _take(overrides, "seeds")
    cfg = compose_config(overrides)
    try:
        seeds = [cfg.seed] if seeds_text is None else yaml.safe_load(seeds_text)
    except yaml.YAMLError:
        seeds = None
    seeds = seeds if isinstance(seeds, list) else [seeds]
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"seeds={seeds_text} must be a list of integers, e.g. seeds=[0,1,2]")
    labels = build_datamodule(cfg).subject_labels()
    split = OmegaConf.to_container(cfg.split)
    n_folds = len(
        fold_test_subjects(
            labels, split["name"], split.get("k", 5), split.get("seed", 0), split.get("test_subjects", ())
        )
    )
    return cfg, n_folds, seeds, overrides


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return
    cv_dir_text, overrides = _take(argv, "cv_dir")
    try:
        cfg, n_folds, seeds, overrides = plan(overrides)
    except USER_ERRORS as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
    name = f"{cfg.experiment_name}-{cfg.split.name}"
    cv_dir = Path(cv_dir_text or Path(cfg.paths.log_dir) / "cv" / name).resolve()
    print(f"[emg-cv] {name}: {n_folds} folds x {len(seeds)} seed(s) = {n_folds * len(seeds)} jobs in {cv_dir}")
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
        "+hydra.callbacks.cv_progress._target_=emg_lightning.sweeps.CVProgress",
    ]
    env = {**os.environ, TOTAL_JOBS_ENV: str(n_folds * len(seeds))}
    sweep = subprocess.run(command, env=env)
    if sweep.returncode != 0 and not any(cv_dir.rglob("metrics.json")):
        print(f"error: the sweep failed (exit {sweep.returncode}) before any fold finished", file=sys.stderr)
        sys.exit(sweep.returncode)
    summary = report(cv_dir, name)
    print(markdown(summary))
    print(f"[emg-cv] written: {cv_dir}/cv_summary.json, cv_summary.md, " + ", ".join(summary["plots"]))
    if "wandb" in (cfg.get("logger") or {}):
        log_summary_to_wandb(cfg, summary, cv_dir)
    missing = n_folds * len(seeds) - len(summary["per_fold"])
    if missing:
        print(f"[emg-cv] {missing} job(s) did not finish: run the same command again to retry them", file=sys.stderr)
        sys.exit(1)


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


if __name__ == "__main__":
    main()
