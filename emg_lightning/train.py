"""emg-train: train one fold, test it on the held-out subject(s), write metrics.json (Hydra entry point)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf

from emg_lightning.data.datamodule import EMGDataModule
from emg_lightning.errors import ConfigError, EMGLightningError
from emg_lightning.io import atomic_write_json, atomic_write_text
from emg_lightning.metrics.summary import format_confusion, format_metrics
from emg_lightning.module import EMGClassifier

# The top-level conf/ of the checkout (editable install). Hydra's --config-dir adds another.
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


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


def write_predictions(path: Path, predictions: dict, datamodule: EMGDataModule, fold: int, seed: int | None) -> None:
    """One row per test window: who it is, its true and predicted class, and every class probability."""
    classes = datamodule.classes
    lines = [",".join(["fold", "seed", "subject", "record", "window", "label", "predicted"]
                      + [f"p_{c}" for c in classes])]
    probabilities = predictions["probabilities"].numpy()
    for i, row in enumerate(probabilities):
        lines.append(",".join([
            str(fold), "" if seed is None else str(seed), datamodule.subjects[int(predictions["subject"][i])],
            datamodule.records[int(predictions["record"][i])], str(int(predictions["window"][i])),
            classes[int(predictions["y"][i])], classes[int(row.argmax())], *(f"{p:.6f}" for p in row)]))
    atomic_write_text(path, "\n".join(lines) + "\n")


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, test with the best checkpoint, write metrics.json and config.yaml; return the metrics."""
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, workers=True)
    out_dir = Path(cfg.paths.output_dir)
    datamodule = build_datamodule(cfg)
    datamodule.setup()  # bad folds and empty data fail here, before any logger starts
    model = EMGClassifier(net=_plain(cfg.model.net), class_names=datamodule.classes,
                          optimizer=_plain(cfg.model.optimizer), scheduler=_plain(cfg.model.scheduler),
                          label_smoothing=_plain(cfg.label_smoothing))
    callbacks = _instantiate_all(cfg.get("callbacks"))
    loggers = _instantiate_all(cfg.get("logger"))
    if len(datamodule.val_set) == 0:
        raise ConfigError("the validation set is empty: set split.val_subjects_per_class >= 1 (model selection "
                          "and early stopping use validation subjects)")
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    settings = resolved_config(cfg)
    for logger in loggers:
        logger.log_hyperparams(settings)
    atomic_write_text(out_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(settings)))
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    checkpoint = trainer.checkpoint_callback
    best = checkpoint.best_model_path if checkpoint is not None and checkpoint.best_model_path else None
    trainer.test(model, datamodule=datamodule, ckpt_path=best or None, verbose=False)
    fold = datamodule.fold
    metrics = {
        **model.test_results,
        "test/confusion": model.test_confusion,
        "class_names": datamodule.classes,
        "fold": fold.index,
        "seed": cfg.seed,
        "split": cfg.split.name,
        "leaky": fold.leaky,
        "test_subjects": list(fold.test),
        "val_subjects": list(fold.val),
        "train_subjects": list(fold.train),
        "test_windows": len(datamodule.test_set),
        "best_checkpoint": best,
        "best_val_bal_acc": float(checkpoint.best_model_score) if best else None,
        "epochs": trainer.current_epoch,
    }
    write_predictions(out_dir / "predictions.csv", model.test_predictions, datamodule, fold.index, cfg.seed)
    atomic_write_json(out_dir / "metrics.json", metrics)
    leaky = " -- LEAKY window-level split: not a subject-independent figure" if fold.leaky else ""
    print(f"\nfold {fold.index} ({cfg.split.name}{leaky}), test subject(s) {', '.join(fold.test)}, "
          f"{metrics['test_windows']} windows, model {cfg.model.net.name}, seed {cfg.seed}")
    print(format_metrics(model.test_results))
    print(format_confusion(model.test_confusion, datamodule.classes))
    print(f"outputs: {out_dir}")
    return metrics


def run(cfg: DictConfig) -> dict[str, Any] | None:
    """Train with a clean global state, and always close the W&B run (folds may share one process)."""
    import wandb

    try:
        if wandb.run is not None:
            wandb.finish()
        return train(cfg)
    except EMGLightningError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    finally:
        if wandb.run is not None:
            wandb.finish()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
