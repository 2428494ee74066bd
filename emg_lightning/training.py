"""Train one fold: fit, test with the chosen weights, write metrics.json, predictions.csv and config.yaml.

The library behind ``emg-train`` (and every fold of ``emg-cv``); the command itself is ``emg_lightning/cli/train.py``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from emg_lightning.classifier import EMGClassifier
from emg_lightning.config import (
    build_classifier,
    build_datamodule,
    build_loggers,
    check_settings,
    continue_csv_files,
    instantiate_all,
    plain,
    print_config_tree,
    resolved_config,
)
from emg_lightning.data.datamodule import EMGDataModule
from emg_lightning.data.splits import inner_fold_draws
from emg_lightning.data.weighting import training_weights
from emg_lightning.metrics.classification import test_results_of
from emg_lightning.metrics.summary import format_confusion, format_metrics
from emg_lightning.models import closed_form
from emg_lightning.models.linear import fit_feature_linear
from emg_lightning.run_files.predictions import whole_record_predictions, write_predictions
from emg_lightning.runs import (
    FIT_FINISHED,
    LEAVE_BUSY_FOLDS_ENV,
    MODEL_INPUT,
    FoldBusy,
    fold_lock,
    previous_run,
    remove_if_untouched,
    set_aside_unreadable_checkpoints,
)
from emg_lightning.runtime.devices import claim_device
from emg_lightning.runtime.errors import ConfigError, EMGLightningError
from emg_lightning.runtime.files import atomic_write_json, atomic_write_text
from emg_lightning.runtime.malloc import configure_malloc
from emg_lightning.runtime.quiet import quiet_third_party

log = logging.getLogger(__name__)

TEST_WEIGHTS = ("best", "last")


class InterruptedRun(Exception):
    """Training or testing stopped by SIGTERM or Ctrl-C; the output folder holds a checkpoint to resume from."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, test with the chosen weights, write metrics.json, predictions.csv and config.yaml; return the metrics."""
    check_settings(cfg)
    quiet_third_party()
    out_dir = Path(cfg.paths.output_dir)
    log.info("malloc: %s", configure_malloc(cfg.get("malloc", "reuse")))
    if cfg.get("threads") is not None:
        torch.set_num_threads(cfg.threads)
    settings = resolved_config(cfg)
    state = previous_run(out_dir, settings)
    if state == "finished":
        print(f"fold {cfg.data.fold}, seed {cfg.seed}: already finished in {out_dir}, skipped")
        return json.loads((out_dir / "metrics.json").read_text())
    test_weights = cfg.get("test_weights", "best")
    if test_weights not in TEST_WEIGHTS:
        raise ConfigError(
            f"test_weights={test_weights!r} is unknown: use best (checkpoint of the best "
            f"model_checkpoint.monitor) or last (final-epoch weights, as the ALSNet paper)"
        )
    if state in ("resume", "test"):
        unreadable = set_aside_unreadable_checkpoints(out_dir)
        if unreadable:
            print(f"fold {cfg.data.fold}, seed {cfg.seed}: {unreadable}; the fold starts over", file=sys.stderr)
            log.warning("%s; the fold starts over", unreadable)
            state = "fresh"
    ckpt_path = cfg.get("ckpt_path") or (str(out_dir / "checkpoints" / "last.ckpt") if state == "resume" else None)
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, workers=True)
    datamodule = build_datamodule(cfg)
    datamodule.setup()  # bad folds and empty data fail here, before any logger starts
    model = build_classifier(cfg, datamodule)
    if hasattr(model.net, "set_standardisation") and state == "fresh":  # a resumed run restores it with the weights
        model.net.set_standardisation(training_features(model.net, datamodule))
    callbacks = instantiate_all(cfg.get("callbacks"))
    loggers = build_loggers(cfg, out_dir)
    if len(datamodule.val_set) == 0:
        raise ConfigError(
            "the validation set is empty: set split.val_subjects_per_class >= 1 (model selection "
            "and early stopping use validation subjects)"
        )
    # after every check of the settings and the data: a refusal is the last line, not hidden above a tree
    if cfg.get("print_config", True):
        print_config_tree(settings, save_to=out_dir / "config_tree.log")
    if state == "resume":
        print(f"fold {cfg.data.fold}, seed {cfg.seed}: resuming from {ckpt_path}")
    if state == "test":
        print(f"fold {cfg.data.fold}, seed {cfg.seed}: training had finished in {out_dir}; testing")
    with contextlib.ExitStack() as stack:
        devices = {}
        if cfg.get("claim_device") and torch.cuda.device_count() > 1:
            devices = {"devices": [stack.enter_context(claim_device(torch.cuda.device_count()))]}
        trainer: L.Trainer = hydra.utils.instantiate(
            cfg.trainer, callbacks=callbacks, logger=loggers or False, **devices
        )
        return _fit_and_test(cfg, trainer, model, datamodule, loggers, settings, ckpt_path, test_weights, state)


@contextlib.contextmanager
def _interruptible(cfg: DictConfig, trainer: L.Trainer, stage: str):
    """SIGTERM (SLURM preemption, ``kill``) and Ctrl-C end the run with the command that resumes it."""
    out_dir = Path(cfg.paths.output_dir)

    def where() -> str:  # the epoch the interruption came in, not the one the stage began with
        return f"in epoch {trainer.current_epoch} of fold {cfg.data.fold}, seed {cfg.seed}"

    def hint() -> str:
        """What the same command will do: resume from the last checkpoint, or start over when none was written."""
        again = f"run the same command again with hydra.run.dir={out_dir} (emg-cv: the same command)"
        if (out_dir / "checkpoints" / "last.ckpt").is_file():
            return f"{again} to resume from its last checkpoint"
        return f"no checkpoint was written yet: {again} to start the fold over"

    try:
        yield
    except SIGTERMException:
        raise InterruptedRun(f"interrupted by SIGTERM while {stage} {where()}: {hint()}", 143) from None
    except SystemExit:
        if trainer.interrupted:  # Lightning's KeyboardInterrupt handler exits after a graceful teardown
            raise InterruptedRun(f"interrupted by Ctrl-C while {stage} {where()}: {hint()}", 130) from None
        raise


def _fit_and_test(
    cfg: DictConfig,
    trainer: L.Trainer,
    model: EMGClassifier,
    datamodule: EMGDataModule,
    loggers: list,
    settings: dict[str, Any],
    ckpt_path: str | None,
    test_weights: str,
    state: str,
) -> dict[str, Any]:
    """Write what the run reads, fit (or take the finished fit), then test on the fold's test subjects and write
    the results -- or, for a final model or a search trial, say why there is no test."""
    out_dir = Path(cfg.paths.output_dir)
    for logger in loggers:
        logger.log_hyperparams(settings)
    atomic_write_text(out_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(settings)))
    atomic_write_json(out_dir / MODEL_INPUT, model_input(datamodule))
    fitted = _fit(cfg, trainer, model, datamodule, ckpt_path, state)
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
        **fitted,
    }
    if not fold.test:  # split=all: the final model; its accuracy is what its CV measured
        atomic_write_json(out_dir / "metrics.json", {**metrics, "tested": False, "final_model": True})
        print(
            f"final model: trained on {len(fold.train)} subjects, {len(fold.val)} validation subjects "
            f"({', '.join(fold.val)}) chose its weights ({test_weights}); no test subjects, so no accuracy here: "
            f"report its CV's (emg-cv with the same settings). Use it: emg-predict {out_dir} <recordings>"
        )
        return metrics
    if not cfg.get("run_test", True):  # hyperparameter searches: the test subjects stay unseen
        atomic_write_json(out_dir / "metrics.json", {**metrics, "tested": False})
        print(
            f"fold {fold.index}, seed {cfg.seed}: trained, not tested (run_test=false); best {_best(metrics)}; "
            f"outputs: {out_dir}"
        )
        return metrics
    _test(cfg, trainer, model, datamodule, loggers, fitted["best_checkpoint"], test_weights, state)
    if datamodule.predicts_records:  # features of whole records: one prediction per record, figures per record
        model.test_predictions = whole_record_predictions(model.test_predictions)
        predictions = model.test_predictions
        model.test_results, model.test_confusion = test_results_of(
            predictions["probabilities"], predictions["y"], datamodule.classes
        )
    metrics = {
        **model.test_results,
        "test/confusion": model.test_confusion,
        **metrics,
        "test_windows": len(datamodule.test_set),
        "test_weights": test_weights if fitted["best_checkpoint"] or test_weights == "last" else "last (no checkpoint)",
    }
    _write_test_results(cfg, model, datamodule, metrics)
    return metrics


def training_features(net: torch.nn.Module, datamodule: EMGDataModule, batch: int = 512) -> np.ndarray:
    """The feature vectors of every training window, (windows, features): the served ones (``data.features``), or
    those the network computes itself from the windows as served (without the shift context, before any
    augmentation) -- what its standardisation is fitted on."""
    rows = datamodule.train_set.rows
    if datamodule.feature_table is not None:
        return np.asarray(datamodule.feature_table[rows])
    parts = []
    for start in range(0, len(rows), batch):
        served = datamodule.train_set[np.arange(start, min(start + batch, len(rows)))]
        x = served["x"][..., : int(served["length"][0])] if "length" in served else served["x"]
        parts.append(net.features(x).double().numpy())
    return np.concatenate(parts)


def _fit(
    cfg: DictConfig,
    trainer: L.Trainer,
    model: EMGClassifier,
    datamodule: EMGDataModule,
    ckpt_path: str | None,
    state: str,
) -> dict[str, Any]:
    """Train (or fit in closed form, or read back a fit that had finished) and say what was chosen: the best
    checkpoint, its validation score and the final epoch's (written as fit_finished.json)."""
    out_dir = Path(cfg.paths.output_dir)
    if state == "test":  # fit() had finished (early stopping or the last epoch): test, never train on
        return json.loads((out_dir / FIT_FINISHED).read_text())
    if closed_form(cfg.model.net.name):
        return _fit_in_closed_form(cfg, trainer, model, datamodule)
    if trainer.world_size > 1:
        datamodule.check_processes(trainer.world_size)
    with _interruptible(cfg, trainer, "training"):
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    checkpoint = trainer.checkpoint_callback
    best = checkpoint.best_model_path if checkpoint is not None and checkpoint.best_model_path else None
    monitor = checkpoint.monitor if checkpoint is not None else None
    score = _best_score(checkpoint, best)
    final = trainer.callback_metrics.get(monitor or "val/bal_acc")
    final_score = None if final is None else float(final)
    fitted = {
        "best_checkpoint": best,
        # the best checkpoint's score is a balanced accuracy only when that is what it monitored
        "best_val_bal_acc": score if monitor == "val/bal_acc" else None,
        "best_val_score": {"monitor": monitor, "value": score},
        # the final epoch's, for test_weights=last (what is then tested)
        "final_val_score": {"monitor": monitor or "val/bal_acc", "value": final_score},
        "epochs": trainer.current_epoch,
    }
    if trainer.is_global_zero:
        atomic_write_json(out_dir / FIT_FINISHED, fitted)
    return fitted


def _test(
    cfg: DictConfig,
    trainer: L.Trainer,
    model: EMGClassifier,
    datamodule: EMGDataModule,
    loggers: list,
    best: str | None,
    test_weights: str,
    state: str,
) -> None:
    """Test the chosen weights on one device (the model keeps the results: test_results, test_predictions)."""
    if trainer.world_size > 1:
        # test on one device: a distributed sampler pads the test set with repeated windows, biasing every metric
        bar = {"bar": (cfg.get("callbacks") or {}).get("progress_bar")}
        continue_csv_files(loggers)  # spawned processes wrote the training epochs' rows
        trainer = hydra.utils.instantiate(
            cfg.trainer,
            devices=1,
            num_nodes=1,
            strategy="auto",
            callbacks=instantiate_all(bar),
            logger=loggers or False,
        )
    # "last": the final (or early-stopped) epoch's weights: in memory after fit(), in last.ckpt after a restart
    weights = best if test_weights == "best" else None
    if weights is None and state == "test":
        weights = str(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    with _interruptible(cfg, trainer, "testing"):
        trainer.test(model, datamodule=datamodule, ckpt_path=weights, verbose=False)


def _write_test_results(cfg: DictConfig, model: EMGClassifier, datamodule: EMGDataModule, metrics: dict) -> None:
    """predictions.csv and metrics.json, then the figures on the console and in the log."""
    out_dir, fold = Path(cfg.paths.output_dir), datamodule.fold
    write_predictions(
        out_dir / "predictions.csv",
        model.test_predictions,
        datamodule.classes,
        datamodule.subjects,
        datamodule.records,
        fold.index,
        cfg.seed,
    )
    atomic_write_json(out_dir / "metrics.json", metrics)
    leaky = f" -- LEAKY {cfg.split.name} split: not a subject-independent figure" if fold.leaky else ""
    report = "\n".join(
        [
            f"\nfold {fold.index} ({cfg.split.name}{leaky}), test subject(s) {', '.join(fold.test)}, "
            f"{metrics['test_windows']} windows"
            + (f" of {len(model.test_predictions['record'])} records" if datamodule.predicts_records else "")
            + f", model {cfg.model.net.name}, seed {cfg.seed}"
            + (
                " (figures per record: a record-level model)"
                if getattr(model.net, "pools_records", False) or datamodule.predicts_records
                else ""
            ),
            format_metrics(model.test_results),
            format_confusion(model.test_confusion, datamodule.classes),
            f"outputs: {out_dir}",
        ]
    )
    print(report)
    to_log_file(logging.INFO, f"test results:{report}")


def _fit_in_closed_form(
    cfg: DictConfig, trainer: L.Trainer, model: EMGClassifier, datamodule: EMGDataModule
) -> dict[str, Any]:
    """The linear feature model on every non-test subject (training + validation), its L2 strength chosen by a
    subject-grouped inner cross-validation over them (``model.inner_folds`` folds, ``model.inner_repeats`` draws of
    them from the run's seed, scored by ``model.inner_score``; the test subjects never take part); stored as
    ``checkpoints/last.ckpt`` like a network's weights."""
    out_dir = Path(cfg.paths.output_dir)
    rows = datamodule.fitting_rows()
    labels = datamodule.train_set.labels
    subjects = datamodule.table.columns["subject"][rows]
    fitting = sorted(set(subjects))
    label_of = dict(zip(subjects.tolist(), labels[rows].tolist()))
    k = min(int(cfg.model.get("inner_folds", 5)), len(fitting))
    inner_score = str(cfg.model.get("inner_score", "log_loss"))
    try:
        # the seed draws the folds: seeds of a closed-form fit differ only in this
        draws = inner_fold_draws(
            subjects, {s: label_of[s] for s in fitting}, k, int(cfg.model.get("inner_repeats", 1)), int(cfg.seed)
        )
        choice = fit_feature_linear(
            model.net,
            np.asarray(datamodule.feature_table[rows], dtype=np.float64),
            labels[rows],
            draws,
            plain(cfg.model.get("l2_grid")) or [],
            inner_score,
            training_weights(subjects, datamodule.weight_by),
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    checkpoint = out_dir / "checkpoints" / "last.ckpt"
    trainer.strategy.connect(model)
    trainer.save_checkpoint(checkpoint, weights_only=True)
    draws_text = f"{len(draws)} draws of a {k}-fold" if len(draws) > 1 else f"a {k}-fold"
    print(
        f"fold {cfg.data.fold}, seed {cfg.seed}: L2 strength {choice['l2']:g} chosen by {draws_text} inner "
        f"cross-validation over the {len(fitting)} training + validation subjects ({inner_score}"
        + ("; each subject weighted alike" if datamodule.weight_by == "subject" else "")
        + "; held-out "
        f"balanced accuracy {choice['inner_bal_acc']:.3f}, loss {choice['inner_log_loss']:.3f}); refitted on all "
        f"of them"
    )
    score = {
        "monitor": f"inner cross-validation {'loss' if inner_score == 'log_loss' else inner_score}",
        "value": choice[f"inner_{inner_score}"],
    }
    fitted = {
        "best_checkpoint": str(checkpoint),
        "best_val_bal_acc": choice["inner_bal_acc"],
        "best_val_score": score,
        "final_val_score": score,
        "epochs": 0,
        **choice,
    }
    if trainer.is_global_zero:
        atomic_write_json(out_dir / FIT_FINISHED, fitted)
    return fitted


def model_input(datamodule: EMGDataModule) -> dict[str, Any]:
    """What the network reads, for whoever uses it later (emg-predict, emg-eval, export): rate, window length,
    unit, normalization, feature set and class order; and what it was trained on (source, label renaming,
    muscles, native rates), so that an evaluation on other recordings can say how they differ."""
    table = datamodule.load_table()
    metadata = table.summary.get("record_metadata", {})
    kept = set(table.columns["record"][np.isin(table.columns["label"], datamodule.classes)].tolist())
    muscles = sorted({metadata.get(r, {}).get("muscle", "unknown") for r in kept})
    return {
        "sample_rate_hz": datamodule.sample_rate,
        "window_s": datamodule.settings.window_s,
        "window_samples": int(table.windows.shape[1]),
        "unit": "uV",
        "normalization": datamodule.normalization,
        "features": datamodule.features,
        "feature_names": datamodule.feature_names,
        "classes": datamodule.classes,
        "training_data": {
            "source": datamodule.source,
            "label_map": datamodule.label_map,
            "muscles": muscles,
            "native_rates_hz": sorted({float(r) for r in table.summary.get("native_rates_hz", {})}),
        },
    }


def _best(metrics: dict[str, Any]) -> str:
    """The best validation score, named: "val/loss 0.4132" (a closed-form fit: its inner cross-validation's)."""
    # runs finished before best_val_score existed monitored val/bal_acc
    score = metrics.get("best_val_score") or {"monitor": "val/bal_acc", "value": metrics.get("best_val_bal_acc")}
    return f"{score['monitor']} {score['value']}"


def _best_score(checkpoint: Any, best: str | None) -> float | None:
    """The monitored score of the best checkpoint (read from the file when spawned DDP ranks kept it)."""
    if not best:
        return None
    if checkpoint.best_model_score is not None:
        return float(checkpoint.best_model_score)
    if checkpoint.monitor is None:  # callbacks=none: Lightning's own checkpoint keeps the last epoch, unscored
        return None
    state = torch.load(best, map_location="cpu", weights_only=True)["callbacks"]
    score = next(
        v["best_model_score"]
        for k, v in state.items()
        if k.startswith("ModelCheckpoint") and v.get("best_model_path") == best
    )
    return None if score is None else float(score)


def to_log_file(level: int, message: str) -> None:
    """Into the run's log file (train.log) only: the console already shows it, printed without log prefixes."""
    record = log.makeRecord(log.name, level, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def run(cfg: DictConfig) -> dict[str, Any] | None:
    """Train with a clean global state, and always close the W&B run (folds may share one process)."""
    import wandb

    out_dir = Path(cfg.paths.output_dir)
    try:
        if wandb.run is not None:
            wandb.finish()
        with fold_lock(out_dir, wait=os.environ.get(LEAVE_BUSY_FOLDS_ENV) != "1"):
            metrics = train(cfg)
        (out_dir / "failed.json").unlink(missing_ok=True)  # an earlier attempt's failure, now superseded
        return metrics
    except FoldBusy as exc:  # emg-cv comes back for it once the other process lets go
        print(f"[emg-cv] {exc}", flush=True)
        return None
    except InterruptedRun as exc:  # the whole sweep stops too: the user or the scheduler asked for it
        to_log_file(logging.ERROR, str(exc))
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except Exception as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        to_log_file(logging.ERROR, message)
        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            # one failing fold must not stop the others: record it for the CV report and go on
            atomic_write_json(out_dir / "failed.json", {"fold": cfg.data.fold, "seed": cfg.seed, "error": message})
            print(f"error: fold {cfg.data.fold}, seed {cfg.seed} failed: {message}", file=sys.stderr)
            return None
        if isinstance(exc, EMGLightningError):
            remove_if_untouched(out_dir)
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        raise
    finally:
        if wandb.run is not None:
            wandb.finish()
