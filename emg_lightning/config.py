"""Compose the Hydra configuration and build the run's objects from it: the one module every command shares.

Commands (``emg_lightning/cli``) parse their arguments, call these builders and print; nothing here imports a command.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, Glob, IntervalSweep, RangeSweep
from hydra.errors import HydraException, InstantiationException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from emg_lightning.classifier import EMGClassifier
from emg_lightning.data.datamodule import EMGDataModule, check_classes
from emg_lightning.losses.label_smoothing import LabelSmoothing
from emg_lightning.models import MODELS, closed_form, input_kind, pools_records
from emg_lightning.models.linear import INNER_CHOICE_KEYS, INNER_METRICS, check_inner_choice
from emg_lightning.runs import wandb_run_id
from emg_lightning.runtime.errors import ConfigError, EMGLightningError
from emg_lightning.runtime.files import atomic_write_text

# The top-level conf/ of the checkout (editable install). Hydra's --config-dir adds another.
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")
# Where a run's hyperparameters came from (hparams_source): reported with every CV summary
HPARAMS_SOURCES = ("fixed", "nested", "outside")
# What a user can fix from the message alone: commands print these as one line, never as a traceback.
USER_ERRORS = (EMGLightningError, HydraException, OmegaConfBaseException)

# ${zfill:${data.fold}} -> "03": emg-cv's fold folders sort and resume by name
if not OmegaConf.has_resolver("zfill"):
    OmegaConf.register_new_resolver("zfill", lambda value, width=2: str(value).zfill(int(width)))
# ${tags_dict:${tags}} -> {baseline: "", v2: ""}: MLflow takes tags as a mapping
if not OmegaConf.has_resolver("tags_dict"):
    OmegaConf.register_new_resolver("tags_dict", lambda tags: {str(t): "" for t in (tags or [])})


def compose_config(overrides: list[str]) -> DictConfig:
    """The emg-train configuration for these overrides, outside a Hydra run (emg-data, emg-cv, emg-bench)."""
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        return compose("train", overrides=overrides + ["paths.output_dir=."])


def search_space(overrides: list[str], ranges: dict[str, str] | None = None) -> list[str]:
    """The keys a Hydra sweeper searches under these overrides (hydra.sweeper.params of e.g. hparams_search=optuna,
    and ``ranges``: search ranges typed on the command line, key -> ``interval(...)`` ...), after ``check_search``
    has accepted them."""
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        cfg = compose("train", overrides=overrides + ["paths.output_dir=."], return_hydra_config=True)
    check_search(cfg, overrides, ranges)
    return list(dict.fromkeys([*(str(k) for k in (cfg.hydra.sweeper.get("params") or {})), *(ranges or {})]))


def check_search(cfg: DictConfig, overrides: list[str], ranges: dict[str, str] | None = None) -> None:
    """Refuse a search that cannot mean what it says (ConfigError naming the setting), before any trial. A searched key
    also set to one value on the command line (``overrides``): the Optuna sweeper would fix it there, and the "search"
    would choose the only value it was given. No searched key at all. A candidate value that ``check_settings`` or the
    data settings refuse (each of a ``choice``, both ends of an ``interval``). ``cfg``: composed with its hydra node;
    keys that select a config group (``model=...``) are left to the trials."""
    params = {**(cfg.hydra.sweeper.get("params") or {}), **(ranges or {})}
    if not params:
        raise ConfigError(
            "the search has no hydra.sweeper.params to explore: use hparams_search=optuna or qemg_rate, or a search "
            "file of your own that lists them"
        )
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if key in params and "(" not in value and "," not in value:
            raise ConfigError(
                f"{override} fixes {key}, which the search explores: drop it to search it, or leave "
                f"hparams_search out to run that value"
            )
    settings = OmegaConf.create(resolved_config(cfg))
    for key, text in params.items():
        if isinstance(OmegaConf.select(settings, str(key)), DictConfig) or "." not in str(key):
            continue  # a config group (model=..., augmentation=...): what it selects is composed per trial
        for value in search_candidates(str(key), str(text)):
            candidate = settings.copy()
            OmegaConf.update(candidate, str(key), value, force_add=True)
            try:
                check_settings(candidate)
                build_datamodule(candidate)
            except EMGLightningError as exc:
                where = f"the search range {key}" if key in (ranges or {}) else f"hydra.sweeper.params.{key}"
                raise ConfigError(f"{where} offers {value!r}, which no trial could run: {exc}") from exc
            except OmegaConfBaseException:
                continue  # an interpolation or a value of another type: the trial composes and judges it


def search_candidates(key: str, text: str) -> list[Any]:
    """The values a sweeper may try for ``key=text``: each of a ``choice(...)`` or ``range(...)``, both ends of an
    ``interval(...)`` (every value between is as valid as its ends for the settings checked here); [] for what this
    cannot list (``glob(...)``, unparsable text: the sweeper and the trials judge those)."""
    try:
        parsed = OverridesParser.create().parse_override(f"{key}={text}").value()
    except HydraException:
        return []
    if isinstance(parsed, ChoiceSweep):
        return list(parsed.list)
    if isinstance(parsed, IntervalSweep):
        return [parsed.start, parsed.end]
    if isinstance(parsed, RangeSweep):
        count = max(0, math.ceil((parsed.stop - parsed.start) / parsed.step)) if parsed.step else 0
        return [parsed.start + i * parsed.step for i in range(count)]
    return [] if isinstance(parsed, Glob) else [parsed]


def plain(node: Any) -> Any:
    """A config node as plain Python data (resolved), or None."""
    return OmegaConf.to_container(node, resolve=True) if node is not None else None


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The run's settings as plain data, without Hydra's own node (present when configs are composed in tests)."""
    return {k: plain(cfg[k]) if OmegaConf.is_config(cfg[k]) else cfg[k] for k in cfg if k != "hydra"}


def build_datamodule(cfg: DictConfig) -> EMGDataModule:
    shift_s = (plain(cfg.get("augmentation")) or {}).get("shift_s", 0.0)
    name = cfg.model.net.get("name")
    return EMGDataModule.from_config(
        plain(cfg.data),
        split=plain(cfg.split),
        cache_dir=cfg.paths.cache_dir,
        train_context_s=shift_s,
        whole_records=name in MODELS and pools_records(name),
    )


def network_settings(net: dict[str, Any], datamodule: EMGDataModule) -> dict[str, Any]:
    """``model.net`` with what the data decides filled in: ``sample_rate: null`` becomes the windows' actual rate,
    ``in_features: null`` the width of the served feature vectors. A network that reads windows refuses feature
    vectors and the other way round."""
    name = net.get("name")
    if name in MODELS:
        reads = input_kind(name)
        if reads == "features" and datamodule.features is None:
            raise ConfigError(
                f"model.net.name={name} reads feature vectors: set data.features (e.g. data.features=qemg, as "
                f"model=qemg does)"
            )
        if reads == "window" and datamodule.features is not None:
            raise ConfigError(
                f"model.net.name={name} reads raw windows, but data.features={datamodule.features} serves feature "
                f"vectors: set data.features=null"
            )
        if datamodule.predicts_records and not closed_form(name):
            raise ConfigError(
                f"data.features={datamodule.features} describes whole records (a record with no motor unit has no "
                f"MUAP values): only the closed-form linear model reads it (model=muap or model=qemg_muap), not "
                f"model.net.name={name}"
            )
    if "sample_rate" in net and net["sample_rate"] is None:
        net = {**net, "sample_rate": datamodule.sample_rate}
    if "in_features" in net and net["in_features"] is None:
        net = {**net, "in_features": len(datamodule.feature_names or [])}
    return net


def build_classifier(cfg: DictConfig, datamodule: EMGDataModule) -> EMGClassifier:
    return EMGClassifier(
        net=network_settings(plain(cfg.model.net), datamodule),
        class_names=datamodule.classes,
        optimizer=plain(cfg.model.get("optimizer")),
        scheduler=plain(cfg.model.get("scheduler")),
        label_smoothing=plain(cfg.label_smoothing),
        compile_net=bool(cfg.get("compile", False)),
        augmentation=plain(cfg.get("augmentation")),
    )


def instantiate_all(group: DictConfig | dict | None) -> list:
    """Every ``_target_`` node of a config group (callbacks), skipping those set to null."""
    return [hydra.utils.instantiate(c) for c in (group or {}).values() if c is not None and "_target_" in c]


def build_loggers(cfg: DictConfig, out_dir: Path) -> list:
    loggers = []
    for node in (cfg.get("logger") or {}).values():
        if node is None or "_target_" not in node:
            continue
        extra = {"id": wandb_run_id(out_dir), "resume": "allow"} if node._target_.endswith("WandbLogger") else {}
        try:
            loggers.append(hydra.utils.instantiate(node, **extra))
        except (ImportError, InstantiationException) as exc:
            if "mlflow" in str(exc).lower() or "tensorboard" in str(exc).lower():
                name = "mlflow" if "mlflow" in str(exc).lower() else "tensorboard"
                raise ConfigError(
                    f"logger={name} needs the {name} package, which is not installed here: "
                    f"pip install {name} (or choose logger=csv / wandb / none)"
                ) from exc
            raise
    continue_csv_files(loggers)
    return loggers


def continue_csv_files(loggers: list) -> None:
    """A CSV logger appending to an existing metrics.csv (a resumed run; the test after spawned processes wrote it)
    must know the file's columns: Lightning's would rewrite the file with only the columns it logged itself and fail
    on the others."""
    from lightning.pytorch.loggers import CSVLogger

    for logger in loggers:
        if isinstance(logger, CSVLogger):
            path = Path(logger.experiment.metrics_file_path)
            if path.is_file():
                with open(path, newline="") as handle:
                    header = next(csv.reader(handle), [])
                known = logger.experiment.metrics_keys
                known.extend(sorted(set(header) - set(known)))
                known.sort()


def config_tree(settings: dict[str, Any]) -> Any:
    """The resolved settings as a rich tree: one branch per group, the groups a reader looks for first."""
    from rich.syntax import Syntax
    from rich.tree import Tree

    tree = Tree("config", guide_style="dim")
    first = [
        k for k in ("data", "split", "model", "label_smoothing", "trainer", "callbacks", "logger") if k in settings
    ]
    for key in first + [k for k in settings if k not in first]:
        value = settings[key]
        branch = tree.add(key)
        text = (
            OmegaConf.to_yaml(OmegaConf.create({"_": value}))[3:]
            if not isinstance(value, dict)
            else OmegaConf.to_yaml(OmegaConf.create(value))
        )
        branch.add(Syntax(text.strip() or "{}", "yaml", theme="ansi_dark", background_color="default"))
    return tree


def print_config_tree(settings: dict[str, Any], save_to: Path | None = None) -> None:
    """Print the tree at the start of a run; ``save_to`` keeps a plain-text copy in the run folder."""
    from rich.console import Console

    Console().print(config_tree(settings))
    if save_to is not None:
        buffer = io.StringIO()
        Console(file=buffer, no_color=True, width=120).print(config_tree(settings))
        atomic_write_text(save_to, buffer.getvalue())


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_settings(cfg: DictConfig) -> None:
    """Refuse settings that cannot mean anything, before any work: each one line that names the setting."""
    fold, seed = cfg.data.get("fold"), cfg.get("seed")
    if not isinstance(fold, int) or isinstance(fold, bool) or fold < 0:
        raise ConfigError(f"data.fold={fold!r} must be a fold number, 0 or more (emg-cv runs them all)")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ConfigError(f"seed={seed!r} must be an integer (or null to leave the generators unseeded)")
    trainer = cfg.get("trainer") or {}
    epochs = trainer.get("max_epochs")
    if not trainer.get("fast_dev_run") and (not isinstance(epochs, int) or epochs < 1):
        raise ConfigError(
            f"trainer.max_epochs={epochs!r} trains nothing: use 1 or more (an untrained network's "
            f"figures are not results)"
        )
    if trainer.get("use_distributed_sampler", False):
        raise ConfigError(
            "trainer.use_distributed_sampler=true would pad each process's share of the windows with repeats (and "
            "split batches twice): leave it false; the DataModule shares whole batches out among processes itself"
        )
    check_classes(plain(cfg.data.get("classes")), plain(cfg.data.get("label_map")))
    smoothing = LabelSmoothing.from_settings(plain(cfg.get("label_smoothing")))
    net_name = cfg.model.net.get("name")
    if net_name in MODELS and pools_records(net_name) and smoothing.active:
        raise ConfigError(
            f"label_smoothing={smoothing.name} smooths window targets, but model.net.name={net_name} is trained "
            f"on record labels: use label_smoothing=none"
        )
    if net_name in MODELS and closed_form(net_name):  # no optimizer, no epochs
        if smoothing.active:
            raise ConfigError(
                f"label_smoothing={smoothing.name} shapes gradient training, but model.net.name={net_name} is "
                f"fitted in closed form: use label_smoothing=none"
            )
        for key, least in (("inner_folds", 2), ("inner_repeats", 1)):
            value = cfg.model.get(key, least)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ConfigError(f"model.{key}={value!r} must be a whole number, {least} or more")
        try:
            check_inner_choice(plain(cfg.model.get("l2_grid")) or [], cfg.model.get("inner_score", "log_loss"))
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    else:
        closed_form_only = [k for k in INNER_CHOICE_KEYS if k in cfg.model]
        if net_name in MODELS and closed_form_only:
            raise ConfigError(
                f"model.{closed_form_only[0]} chooses the penalty of a model fitted in closed form (model=qemg), but "
                f"model.net.name={net_name} is trained by epochs: remove it"
            )
        if net_name in MODELS and cfg.get("optimized_metric") in INNER_METRICS:  # every trial would score NaN
            raise ConfigError(
                f"optimized_metric={cfg.optimized_metric} is the inner cross-validation score of a model fitted in "
                f"closed form (model=qemg), but model.net.name={net_name} is trained by epochs: search it with "
                f"hparams_search=optuna, or use model=qemg"
            )
        lr = (cfg.model.get("optimizer") or {}).get("lr")
        if not _number(lr) or not lr > 0:
            raise ConfigError(f"model.optimizer.lr={lr!r} must be a positive number, e.g. 1e-3")
    threads = cfg.get("threads")
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise ConfigError(f"threads={threads!r} must be a number of CPU threads, 1 or more (or null: torch's default)")
    source = cfg.get("hparams_source", "fixed")
    if source not in HPARAMS_SOURCES:
        raise ConfigError(f"hparams_source={source!r} is unknown; use one of {', '.join(HPARAMS_SOURCES)}")
    monitor = ((cfg.get("callbacks") or {}).get("model_checkpoint") or {}).get("monitor")
    if cfg.get("optimized_metric") == "best_val_bal_acc" and monitor != "val/bal_acc":
        raise ConfigError(
            f"optimized_metric=best_val_bal_acc is the best checkpoint's validation balanced accuracy, but "
            f"callbacks.model_checkpoint.monitor={monitor}: set it to val/bal_acc for the search"
        )
    per_class = (cfg.get("split") or {}).get("val_subjects_per_class", 1)
    if not isinstance(per_class, int) or isinstance(per_class, bool) or per_class < 0:
        raise ConfigError(f"split.val_subjects_per_class={per_class!r} must be 0 or more")
