"""A cross-validation's plan: its folds and seeds drawn and checked once, its folder named by its settings and
claimed (``cv_plan.json``), before any job starts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from emg_lightning.config import build_datamodule, check_settings, compose_config, resolved_config, search_space
from emg_lightning.cv.identity import cv_settings, differing_keys, settings_hash
from emg_lightning.cv.nested import outer_overrides
from emg_lightning.data.splits import check_split_settings, fold_test_subjects, make_fold
from emg_lightning.reports.cv_summary import PLAN, read_json
from emg_lightning.runtime.errors import ConfigError
from emg_lightning.runtime.files import atomic_write_json

# split.* settings that choose a fold's subjects
FOLD_KEYS = ("val_subjects_per_class", "seed", "k", "test_subjects", "val_subjects")


def take_setting(overrides: list[str], key: str) -> tuple[str | None, list[str]]:
    """Remove ``key=value`` (emg-cv's own settings) from the overrides."""
    values = [o.split("=", 1)[1] for o in overrides if o.startswith(f"{key}=")]
    return (values[-1] if values else None), [o for o in overrides if not o.startswith(f"{key}=")]


def plan(overrides: list[str]) -> tuple[DictConfig, int, list[int], list[str]]:
    """Composed config, number of folds, seeds, and the overrides that go on to emg-train; every fold's split is
    drawn here once, so a setting no fold can honour is refused before any job starts."""
    seeds_text, overrides = take_setting(overrides, "seeds")
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
    datamodule = build_datamodule(cfg)
    labels, strata = datamodule.subject_labels(), datamodule.subject_strata()
    split = OmegaConf.to_container(cfg.split, resolve=True)
    check_split_settings(split["name"], {k: v for k, v in split.items() if k != "name"})
    n_folds = len(
        fold_test_subjects(
            labels, split["name"], split.get("k", 5), split.get("seed", 0), split.get("test_subjects", ()), strata
        )
    )
    for fold in range(n_folds):
        settings = {k: v for k, v in split.items() if k in FOLD_KEYS}
        make_fold(labels, fold, **{"strategy": split["name"], **settings}, strata=strata)
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
    ranges: list[str]  # search ranges typed on the command line (key=interval(...)): for the inner searches only


def prepare(cv_dir_text: str | None, nested_jobs_text: str | None, overrides: list[str]) -> CVPlan:
    """Everything checked and the folder claimed before any job: a setting that cannot mean anything raises one of
    the configuration's user errors here."""
    nested = any(o.startswith("hparams_search=") for o in overrides)
    ranges, overrides = search_ranges(overrides, nested)
    nested_jobs = nested_jobs_count(nested_jobs_text, nested)
    check_trials(overrides)
    cfg, n_folds, seeds, overrides = plan(overrides)
    searched = []
    if nested:  # what the outer folds share: the search's configuration, tested, the searched keys left open
        searched = search_space(overrides, ranges)
        cfg = compose_config(outer_overrides(overrides, searched))
    settings = resolved_config(cfg)
    # the default folder names the configuration: a variant of an experiment never lands in another's folder
    name = f"{cfg.experiment_name}-{cfg.split.name}"
    cv_dir = Path(cv_dir_text or Path(cfg.paths.log_dir) / "cv" / f"{name}-{settings_hash(settings)}").resolve()
    claim_folder(cv_dir, settings, n_folds, seeds)
    ranges_typed = [f"{key}={value}" for key, value in ranges.items()]
    return CVPlan(cfg, cv_dir, name, n_folds, seeds, overrides, searched, nested_jobs, ranges_typed)


def search_ranges(overrides: list[str], nested: bool) -> tuple[dict[str, str], list[str]]:
    """Search ranges typed on emg-cv's command line (``model.optimizer.lr='tag(log, interval(1e-4, 1e-2))'``,
    ``choice(...)``, ``range(...)``, or ``a,b``), as {key: range}, and the other overrides. The inner searches take
    them as Hydra's sweeper does, and ``check_search`` checks their values like a search file's; without
    ``hparams_search`` a range is refused (one configuration is cross-validated: a range needs a search)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    ranges, rest = {}, []
    for text in overrides:
        try:
            override = parser.parse_override(text)
        except Exception:  # noqa: BLE001 - Hydra's own composition names a malformed override later
            rest.append(text)
            continue
        if not override.is_sweep_override() or override.key_or_group.startswith("hydra"):
            rest.append(text)
            continue
        key, _, value = text.lstrip("+~").partition("=")
        if not nested:
            raise ConfigError(
                f"{text} is a search range, and emg-cv cross-validates one configuration: add hparams_search=optuna "
                f"to search it on each outer fold's training subjects, or give {key} one value"
            )
        ranges[key] = value if "(" in value else f"choice({value})"  # a,b,c: Hydra's list sweep
    return ranges, rest


def check_trials(overrides: list[str]) -> None:
    """``hydra.sweeper.n_trials=N`` on the command line: a search of no trial has no winner to test."""
    for override in overrides:
        key, _, text = override.lstrip("+~").partition("=")
        if key != "hydra.sweeper.n_trials":
            continue
        if positive_whole_number(text) is None:
            raise ConfigError(f"hydra.sweeper.n_trials={text} must be a whole number of search trials, 1 or more")


def nested_jobs_count(text: str | None, nested: bool) -> int:
    """``nested_jobs=N``: how many outer folds of a nested search run at once on this machine (default 1)."""
    if text is None:
        return 1
    if not nested:
        raise ConfigError(
            f"nested_jobs={text} runs the outer folds of a nested search side by side, but there is no "
            f"hparams_search: for a plain sweep use launcher=local_parallel hydra.launcher.n_jobs={text}"
        )
    count = positive_whole_number(text)
    if count is None:
        raise ConfigError(f"nested_jobs={text} must be a whole number of outer folds at a time, 1 or more")
    return count


def positive_whole_number(text: str) -> int | None:
    """``text`` as an integer of 1 or more (YAML-read, as Hydra reads overrides), or None when it is not one."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None
