"""emg-train: train one fold, test it on the held-out subject(s), write metrics.json (Hydra entry point)."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from emg_lightning.data.datamodule import EMGDataModule
from emg_lightning.devices import claim_device
from emg_lightning.errors import ConfigError, EMGLightningError
from emg_lightning.io import atomic_write_json, atomic_write_text
from emg_lightning.malloc import configure_malloc
from emg_lightning.run_folder import previous_run, wandb_run_id, write_predictions
from emg_lightning.metrics.summary import format_confusion, format_metrics
from emg_lightning.module import EMGClassifier

# The top-level conf/ of the checkout (editable install). Hydra's --config-dir adds another.
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")
# What a user can fix from the message alone: entry points print these as one line.
USER_ERRORS = (EMGLightningError, HydraException, OmegaConfBaseException)

TEST_WEIGHTS = ("best", "last")


class InterruptedRun(Exception):
    """Training stopped by SIGTERM; the output folder holds a checkpoint to resume from."""


# ${zfill:${data.fold}} -> "03": emg-cv's fold folders sort and resume by name
if not OmegaConf.has_resolver("zfill"):
    OmegaConf.register_new_resolver("zfill", lambda value, width=2: str(value).zfill(int(width)))


def compose_config(overrides: list[str]) -> DictConfig:
    """The emg-train configuration for these overrides, outside a Hydra run (for emg-data and emg-cv)."""
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        return compose("train", overrides=overrides + ["paths.output_dir=."])


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if node is not None else None


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The run's settings as plain data, without Hydra's own node (present when configs are composed in tests)."""
    return {k: _plain(cfg[k]) if OmegaConf.is_config(cfg[k]) else cfg[k] for k in cfg if k != "hydra"}


def build_datamodule(cfg: DictConfig) -> EMGDataModule:
    data = _plain(cfg.data)
    return EMGDataModule(**data, split=_plain(cfg.split), cache_dir=cfg.paths.cache_dir)


def _instantiate_all(group: DictConfig | None) -> list:
    return [hydra.utils.instantiate(c) for c in (group or {}).values() if c is not None and "_target_" in c]


def network_settings(net: dict[str, Any], datamodule: EMGDataModule) -> dict[str, Any]:
    """``model.net`` with what the data decides filled in: ``sample_rate: null`` becomes the windows' actual rate."""
    if "sample_rate" in net and net["sample_rate"] is None:
        return {**net, "sample_rate": datamodule.sample_rate}
    return net


def build_loggers(cfg: DictConfig, out_dir: Path) -> list:
    loggers = []
    for node in (cfg.get("logger") or {}).values():
        if node is None or "_target_" not in node:
            continue
        extra = {"id": wandb_run_id(out_dir), "resume": "allow"} if node._target_.endswith("WandbLogger") else {}
        loggers.append(hydra.utils.instantiate(node, **extra))
    return loggers


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, test with the best checkpoint, write metrics.json and config.yaml; return the metrics."""
    out_dir = Path(cfg.paths.output_dir)
    logging.getLogger(__name__).info("malloc: %s", configure_malloc(cfg.get("malloc", "reuse")))
    settings = resolved_config(cfg)
    state = previous_run(out_dir, settings)
    if state == "finished":
        print(f"fold {cfg.data.fold}, seed {cfg.seed}: already finished in {out_dir}, skipped")
        return json.loads((out_dir / "metrics.json").read_text())
    test_weights = cfg.get("test_weights", "best")
    if test_weights not in TEST_WEIGHTS:
        raise ConfigError(f"test_weights={test_weights!r} is unknown: use best (checkpoint of the best "
                          f"model_checkpoint.monitor) or last (final-epoch weights, as the ALSNet paper)")
    ckpt_path = cfg.get("ckpt_path") or (str(out_dir / "checkpoints" / "last.ckpt") if state == "resume" else None)
    if state == "resume":
        print(f"fold {cfg.data.fold}, seed {cfg.seed}: resuming from {ckpt_path}")
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, workers=True)
    datamodule = build_datamodule(cfg)
    datamodule.setup()  # bad folds and empty data fail here, before any logger starts
    model = EMGClassifier(net=network_settings(_plain(cfg.model.net), datamodule), class_names=datamodule.classes,
                          optimizer=_plain(cfg.model.optimizer), scheduler=_plain(cfg.model.scheduler),
                          label_smoothing=_plain(cfg.label_smoothing), compile_net=bool(cfg.get("compile", False)))
    callbacks = _instantiate_all(cfg.get("callbacks"))
    loggers = build_loggers(cfg, out_dir)
    if len(datamodule.val_set) == 0:
        raise ConfigError("the validation set is empty: set split.val_subjects_per_class >= 1 (model selection "
                          "and early stopping use validation subjects)")
    with contextlib.ExitStack() as stack:
        devices = {}
        if cfg.get("claim_device") and torch.cuda.device_count() > 1:
            devices = {"devices": [stack.enter_context(claim_device(torch.cuda.device_count()))]}
        trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                                                     **devices)
        return _fit_and_test(cfg, trainer, model, datamodule, loggers, settings, ckpt_path, test_weights)


def _fit_and_test(cfg: DictConfig, trainer: L.Trainer, model: EMGClassifier, datamodule: EMGDataModule,
                  loggers: list, settings: dict[str, Any], ckpt_path: str | None, test_weights: str) -> dict[str, Any]:
    out_dir = Path(cfg.paths.output_dir)
    for logger in loggers:
        logger.log_hyperparams(settings)
    atomic_write_text(out_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(settings)))
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    except SIGTERMException:
        # SLURM preemption, `kill`, a scheduler's stop: stop cleanly, the rerun resumes from checkpoints/last.ckpt
        raise InterruptedRun(f"interrupted by SIGTERM in epoch {trainer.current_epoch} of fold {cfg.data.fold}, "
                             f"seed {cfg.seed}: run the same command again with hydra.run.dir={out_dir} (emg-cv: "
                             f"the same command) to resume from its last checkpoint") from None
    checkpoint = trainer.checkpoint_callback
    best = checkpoint.best_model_path if checkpoint is not None and checkpoint.best_model_path else None
    if trainer.world_size > 1 and not trainer.is_global_zero:
        return {}
    fold = datamodule.fold
    metrics = {
        "class_names": datamodule.classes,
        "fold": fold.index,
        "seed": cfg.seed,
        "split": cfg.split.name,
        "leaky": fold.leaky,
        "test_subjects": list(fold.test),
        "val_subjects": list(fold.val),
        "train_subjects": list(fold.train),
        "best_checkpoint": best,
        "best_val_bal_acc": _best_score(checkpoint, best),
        "epochs": trainer.current_epoch,
    }
    if not cfg.get("run_test", True):  # hyperparameter searches: the test subjects stay unseen
        atomic_write_json(out_dir / "metrics.json", {**metrics, "tested": False})
        print(f"fold {fold.index}, seed {cfg.seed}: trained, not tested (run_test=false); best validation balanced "
              f"accuracy {metrics['best_val_bal_acc']}; outputs: {out_dir}")
        return metrics
    if trainer.world_size > 1:
        # test on one device: a distributed sampler pads the test set with repeated windows, biasing every metric
        trainer = hydra.utils.instantiate(cfg.trainer, devices=1, num_nodes=1, strategy="auto",
                                          callbacks=_instantiate_all({"bar": cfg.callbacks.get("progress_bar")}),
                                          logger=loggers or False)
    # "last": the weights in memory when fit() ends, i.e. the final (or early-stopped) epoch's
    trainer.test(model, datamodule=datamodule, ckpt_path=best if test_weights == "best" else None, verbose=False)
    metrics = {**model.test_results, "test/confusion": model.test_confusion, **metrics,
               "test_windows": len(datamodule.test_set),
               "test_weights": test_weights if best or test_weights == "last" else "last (no checkpoint)"}
    write_predictions(out_dir / "predictions.csv", model.test_predictions, datamodule, fold.index, cfg.seed)
    atomic_write_json(out_dir / "metrics.json", metrics)
    leaky = " -- LEAKY window-level split: not a subject-independent figure" if fold.leaky else ""
    print(f"\nfold {fold.index} ({cfg.split.name}{leaky}), test subject(s) {', '.join(fold.test)}, "
          f"{metrics['test_windows']} windows, model {cfg.model.net.name}, seed {cfg.seed}")
    print(format_metrics(model.test_results))
    print(format_confusion(model.test_confusion, datamodule.classes))
    print(f"outputs: {out_dir}")
    return metrics


def _best_score(checkpoint: Any, best: str | None) -> float | None:
    """The monitored score of the best checkpoint (read from the file when spawned DDP ranks kept it)."""
    if not best:
        return None
    if checkpoint.best_model_score is not None:
        return float(checkpoint.best_model_score)
    state = torch.load(best, map_location="cpu", weights_only=True)["callbacks"]
    return float(next(v["best_model_score"] for k, v in state.items() if k.startswith("ModelCheckpoint")
                      and v.get("best_model_path") == best))


def run(cfg: DictConfig) -> dict[str, Any] | None:
    """Train with a clean global state, and always close the W&B run (folds may share one process)."""
    import wandb

    try:
        if wandb.run is not None:
            wandb.finish()
        return train(cfg)
    except InterruptedRun as exc:  # the whole sweep stops too: the user or the scheduler asked for it
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(143)
    except Exception as exc:
        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            # one failing fold must not stop the others: record it for the CV report and go on
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            atomic_write_json(Path(cfg.paths.output_dir) / "failed.json",
                              {"fold": cfg.data.fold, "seed": cfg.seed, "error": message})
            print(f"error: fold {cfg.data.fold}, seed {cfg.seed} failed: {message}", file=sys.stderr)
            return None
        if isinstance(exc, EMGLightningError):
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        raise
    finally:
        if wandb.run is not None:
            wandb.finish()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = run(cfg)
    if cfg.get("optimized_metric"):  # the objective a Hydra sweeper (Optuna) maximises; NaN marks a failed trial
        value = (metrics or {}).get(cfg.optimized_metric)
        return float("nan") if value is None else float(value)
    return None


if __name__ == "__main__":
    # run the importable module's main, not __main__'s: submitit pickles the task function by reference then
    from emg_lightning.train import main as importable_main

    importable_main()
