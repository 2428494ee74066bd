"""emg-cv: every fold (and seed) of a configuration as one Hydra multirun, then the CV report.

    emg-cv split=loso                                     # all LOSO folds, seed 0
    emg-cv split=group_kfold split.k=5 seeds=[0,1,2]       # 5 folds x 3 seeds
    emg-cv model=alsnet data=emglab cv_dir=logs/cv/alsnet  # choose the folder

Takes the same overrides as emg-train. The default folder, ``logs/cv/<experiment_name>-<split>-<hash>``, names the
configuration (8 hex digits of its settings, runtime keys excluded), so variants never share a folder; a cv_dir
holding folds of other settings is refused before any job starts. Folds land in ``<cv_dir>/seed_<s>/fold_<NN>``;
running the same command again skips finished folds and resumes an interrupted one from its ``last.ckpt``; two
processes on one folder never train the same fold at once (a lock per fold) and share the folds: each leaves the
other's to it and waits for them at the end. A failing fold is recorded
(``failed.json``) and the others go on; a summary with jobs missing is named ``*.partial.*`` and emg-cv exits 1.
Hydra launcher overrides (``hydra/launcher=...``) apply unchanged. With ``hparams_search=...`` the CV is nested (a
search per outer fold on its training subjects), ``nested_jobs=N`` outer folds at a time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from emg_lightning.config import (
    USER_ERRORS,
    build_datamodule,
    check_settings,
    compose_config,
    resolved_config,
    search_space,
)
from emg_lightning.data.splits import fold_test_subjects, make_fold
from emg_lightning.errors import ConfigError
from emg_lightning.files import atomic_write_json
from emg_lightning.nested_search import outer_overrides, run_nested
from emg_lightning.reports.cv_summary import PLAN, markdown, read_json, report
from emg_lightning.runs import LEAVE_BUSY_FOLDS_ENV, busy_folds, wait_for_fold
from emg_lightning.settings import cv_settings, differing_keys, settings_hash
from emg_lightning.sweeps import TOTAL_JOBS_ENV

# split.* settings that choose a fold's subjects
FOLD_KEYS = ("val_subjects_per_class", "seed", "k", "test_subjects", "val_subjects")


def _take(overrides: list[str], key: str) -> tuple[str | None, list[str]]:
    """Remove ``key=value`` (emg-cv's own settings) from the overrides."""
    values = [o.split("=", 1)[1] for o in overrides if o.startswith(f"{key}=")]
    return (values[-1] if values else None), [o for o in overrides if not o.startswith(f"{key}=")]


def plan(overrides: list[str]) -> tuple[DictConfig, int, list[int], list[str]]:
    """Composed config, number of folds, seeds, and the overrides that go on to emg-train; every fold's split is
    drawn here once, so a setting no fold can honour is refused before any job starts."""
    seeds_text, overrides = _take(overrides, "seeds")
    cfg = compose_config(overrides)
    try:
        seeds = [cfg.seed] if seeds_text is None else yaml.safe_load(seeds_text)
    except yaml.YAMLError:
        seeds = None
    seeds = seeds if isinstance(seeds, list) else [seeds]
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"seeds={seeds_text} must be a list of integers, e.g. seeds=[0,1,2]")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds={seeds_text} repeats a seed: one run per seed, e.g. seeds=[0,1,2]")
    check_settings(cfg)
    if cfg.split.name == "all":
        raise ConfigError(
            "split=all trains the final model on every subject (no test subjects, nothing to cross-validate): use "
            "emg-train split=all, after the emg-cv whose figures it inherits"
        )
    labels = build_datamodule(cfg).subject_labels()
    split = OmegaConf.to_container(cfg.split, resolve=True)
    n_folds = len(
        fold_test_subjects(
            labels, split["name"], split.get("k", 5), split.get("seed", 0), split.get("test_subjects", ())
        )
    )
    for fold in range(n_folds):
        make_fold(labels, fold, **{"strategy": split["name"], **{k: v for k, v in split.items() if k in FOLD_KEYS}})
    return cfg, n_folds, seeds, overrides


def claim_folder(cv_dir: Path, settings: dict, n_folds: int, seeds: list[int]) -> None:
    """Refuse a folder that holds folds of other settings; record this sweep's folds and seeds (cv_plan.json)."""
    shared = cv_settings(settings)
    plan_path = cv_dir / PLAN
    before = read_json(plan_path) if plan_path.is_file() else None
    stored = before["settings"] if before else _settings_of_existing_folds(cv_dir)
    if stored is not None:
        differ = differing_keys(stored, shared)
        if differ:
            raise ConfigError(
                f"{cv_dir} holds folds of other settings ({', '.join(differ[:6])}{' ...' if len(differ) > 6 else ''}"
                f"): choose another cv_dir=, or delete that folder to start over"
            )
    old_seeds = before["seeds"] if before else []
    atomic_write_json(
        plan_path,
        {
            "folds": list(range(n_folds)),
            "seeds": old_seeds + [s for s in seeds if s not in old_seeds],
            "settings_hash": settings_hash(settings),
            "settings": shared,
        },
    )


def _settings_of_existing_folds(cv_dir: Path) -> dict | None:
    """The shared settings of a fold folder written before cv_plan.json existed, or None for a new folder."""
    for stored in sorted(cv_dir.glob("seed_*/fold_*/config.yaml")):
        return cv_settings(OmegaConf.to_container(OmegaConf.load(stored)))
    return None


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return
    cv_dir_text, overrides = _take(argv, "cv_dir")
    nested_jobs_text, overrides = _take(overrides, "nested_jobs")
    try:
        cv = prepare(cv_dir_text, nested_jobs_text, overrides)
    except KeyboardInterrupt:
        print("error: emg-cv interrupted by Ctrl-C before any job started", file=sys.stderr)
        sys.exit(130)
    jobs = cv.n_folds * len(cv.seeds)
    print(f"[emg-cv] {cv.name}: {cv.n_folds} folds x {len(cv.seeds)} seed(s) = {jobs} jobs in {cv.cv_dir}")
    try:
        if cv.searched:
            print(
                f"[emg-cv] nested search over {', '.join(cv.searched)}: each outer fold searches on its own training "
                f"subjects, then tests its winner"
            )
            try:
                run_nested(cv.overrides, cv.searched, cv.n_folds, cv.seeds, cv.cv_dir, cv.nested_jobs)
            except USER_ERRORS as exc:
                print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
                sys.exit(2)
        else:
            run_sweep(cv.overrides, cv.n_folds, cv.seeds, cv.cv_dir)
        summarise_cv(cv.cfg, cv.cv_dir, cv.name)
    except KeyboardInterrupt:  # finished folds are kept, an interrupted one resumes from its last.ckpt
        print(f"error: emg-cv interrupted by Ctrl-C: run the same command again to finish {cv.cv_dir}", file=sys.stderr)
        sys.exit(130)


@dataclass
class CVPlan:
    cfg: DictConfig  # what the folds share
    cv_dir: Path
    name: str
    n_folds: int
    seeds: list[int]
    overrides: list[str]  # for emg-train
    searched: list[str]  # the keys a nested search explores; [] for a plain sweep
    nested_jobs: int  # outer folds of a nested search at a time


def prepare(cv_dir_text: str | None, nested_jobs_text: str | None, overrides: list[str]) -> CVPlan:
    """Everything checked and the folder claimed before any job. A setting that cannot mean anything ends emg-cv
    here, one line, exit 2."""
    nested = any(o.startswith("hparams_search=") for o in overrides)
    try:
        nested_jobs = nested_jobs_count(nested_jobs_text, nested)
        cfg, n_folds, seeds, overrides = plan(overrides)
        searched = []
        if nested:  # what the outer folds share: the search's configuration, tested, the searched keys left open
            searched = search_space(overrides)
            cfg = compose_config(outer_overrides(overrides, searched))
        settings = resolved_config(cfg)
        # the default folder names the configuration: a variant of an experiment never lands in another's folder
        name = f"{cfg.experiment_name}-{cfg.split.name}"
        cv_dir = Path(cv_dir_text or Path(cfg.paths.log_dir) / "cv" / f"{name}-{settings_hash(settings)}").resolve()
        claim_folder(cv_dir, settings, n_folds, seeds)
    except USER_ERRORS as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
    return CVPlan(cfg, cv_dir, name, n_folds, seeds, overrides, searched, nested_jobs)


def nested_jobs_count(text: str | None, nested: bool) -> int:
    """``nested_jobs=N``: how many outer folds of a nested search run at once on this machine (default 1)."""
    if text is None:
        return 1
    if not nested:
        raise ConfigError(
            f"nested_jobs={text} runs the outer folds of a nested search side by side, but there is no "
            f"hparams_search: for a plain sweep use launcher=local_parallel hydra.launcher.n_jobs={text}"
        )
    try:
        count = yaml.safe_load(text)
    except yaml.YAMLError:
        count = None
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ConfigError(f"nested_jobs={text} must be a whole number of outer folds at a time, 1 or more")
    return count


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
        "+hydra.callbacks.cv_progress._target_=emg_lightning.sweeps.CVProgress",
    ]
    env = {**os.environ, TOTAL_JOBS_ENV: str(n_folds * len(seeds)), LEAVE_BUSY_FOLDS_ENV: "1"}
    while True:
        sweep = subprocess.run(command, env=env)
        if sweep.returncode != 0:  # interrupted or broken: report what there is, never wait on others
            if not any(cv_dir.rglob("metrics.json")):
                print(f"error: the sweep failed (exit {sweep.returncode}) before any fold finished", file=sys.stderr)
                sys.exit(sweep.returncode)
            return
        busy = busy_folds(cv_dir)
        if not busy:
            return
        for fold_dir in busy:
            print(f"[emg-cv] waiting for {fold_dir.relative_to(cv_dir)}: another process is training it", flush=True)
            wait_for_fold(fold_dir)


def summarise_cv(cfg: DictConfig, cv_dir: Path, name: str) -> None:
    """The CV report; exit 1 while jobs are missing."""
    try:
        summary = report(cv_dir, name)
    except USER_ERRORS as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
    print(markdown(summary))
    print(f"[emg-cv] written in {cv_dir}: " + ", ".join(summary["outputs"]))
    if "wandb" in (cfg.get("logger") or {}):
        log_summary_to_wandb(cfg, summary, cv_dir)
    if summary["complete"] is False:
        print(
            f"[emg-cv] PARTIAL: {len(summary['missing'])} job(s) have no result (see failed.json): run the same "
            f"command again to retry them",
            file=sys.stderr,
        )
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
