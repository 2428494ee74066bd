"""EMGClassifier: a LightningModule around any registered network.

Hyperparameters are primitives only (names, numbers, lists, plain dicts), so a checkpoint reloads with
``torch.load(weights_only=True)`` and ``EMGClassifier.load_from_checkpoint(path)`` rebuilds the network alone.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.trainer.states import TrainerFn

from emg_lightning.augmentation import Augmentation, augment, shift_within_record
from emg_lightning.losses.label_smoothing import (
    LabelSmoothing,
    OnlineLabelSmoothing,
    smoothed_targets,
    soft_cross_entropy,
)
from emg_lightning.metrics.classification import compute_stage_metrics, make_metrics, metrics_from_confusion
from emg_lightning.models import MODELS, build_model, input_kind
from emg_lightning.models.mil import pool_records, record_weights
from emg_lightning.runtime.errors import ConfigError, DivergedError

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("none", "plateau", "cosine")


class EMGClassifier(L.LightningModule):
    def __init__(
        self,
        net: dict[str, Any] | None = None,
        class_names: list[str] | None = None,
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
        label_smoothing: dict[str, Any] | None = None,
        compile_net: bool = False,
        augmentation: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        net = dict(net or {"name": "resemgnet"})
        self.class_names = list(class_names or ["normal", "als", "myopathy"])
        self.num_classes = len(self.class_names)
        self.optimizer_cfg = {"name": "adamw", "lr": 1e-3, "weight_decay": 0.0, **(optimizer or {})}
        self.scheduler_cfg = {"name": "none", **(scheduler or {})}
        self.smoothing = LabelSmoothing.from_settings(label_smoothing)
        _check_choice("model.net.name", net.get("name"), MODELS)
        _check_choice("model.optimizer.name", self.optimizer_cfg["name"], OPTIMIZERS)
        _check_choice("model.scheduler.name", self.scheduler_cfg["name"], SCHEDULERS)
        name = net.pop("name")
        self.augmentation = Augmentation.from_settings(augmentation)
        if self.augmentation.active and input_kind(name) != "window":
            raise ConfigError(f"augmentation={self.augmentation.name} changes raw windows; model.net.name={name} reads "
                              f"feature vectors: use augmentation=none")  # fmt: skip
        if self.augmentation.mixup_alpha > 0 and self.smoothing.active:
            raise ConfigError(
                f"augmentation.mixup_alpha={self.augmentation.mixup_alpha} mixes the targets itself; with "
                f"label_smoothing={self.smoothing.name} both would reshape them: choose one"
            )
        self.net = build_model(name, num_classes=self.num_classes, **net)
        if compile_net:  # in place: checkpoints keep the network's own parameter names, reload without compile
            self.net.compile()
        self.online_smoothing = (
            OnlineLabelSmoothing(self.num_classes, self.smoothing.alpha) if self.smoothing.name == "online" else None
        )
        # keys get a suffix: "train" would shadow nn.Module.train
        self.metrics = torch.nn.ModuleDict(
            {f"{stage}_metrics": make_metrics(self.num_classes) for stage in ("val", "test")}
        )
        self._epoch_sums: dict[str, dict[str, Any]] = {}
        for stage in ("train", "val", "test"):
            self._reset_epoch_sums(stage)
        self.test_confusion: list | None = None
        self.test_results: dict[str, float] = {}
        self.test_predictions: dict[str, torch.Tensor] = {}
        self._test_batches: list[dict[str, torch.Tensor]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (batch, num_classes); a one-logit binary head becomes [0, z] so softmax = sigmoid."""
        logits = self.net(x)
        if logits.shape[-1] == 1:
            logits = torch.cat([torch.zeros_like(logits), logits], dim=-1)
        return logits

    def on_after_batch_transfer(self, batch: dict[str, torch.Tensor], dataloader_idx: int) -> dict[str, torch.Tensor]:
        """Training batches only: the shift within the record, then the other augmentations (``augmentation.py``),
        drawn from a generator seeded by the training seed and the global step (same seed, same batches; a resumed
        run continues the sequence). Validation and test batches pass through untouched."""
        if not self.trainer.training or not self.augmentation.active:
            return batch
        x = batch["x"]
        generator = torch.Generator(device=x.device).manual_seed(
            (torch.initial_seed() % 2**31) * 1_000_003 + self.global_step
        )
        batch = dict(batch)
        if "room" in batch:  # windows served with the samples that follow them in their record
            x = shift_within_record(x, batch.pop("room"), int(batch.pop("length")[0]), generator)
        x, targets = augment(x, batch["y"], self.num_classes, self.augmentation, generator)
        batch = {**batch, "x": x}
        if self.augmentation.mixup_alpha > 0:
            batch["targets"] = targets
        return batch

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        if getattr(self.net, "pools_records", False):
            return self._record_step(batch, stage)
        logits = self(batch["x"])
        y = batch["y"]
        if stage == "train" and "targets" in batch:  # mixup: the mixed targets are the truth of the mixed windows
            return self._training_loss(logits, y, batch["targets"])
        if stage == "train":
            return self._training_loss(logits, y)
        loss = F.cross_entropy(logits, y)  # evaluation loss on hard labels, comparable across smoothing settings
        probabilities = logits.detach().softmax(dim=-1)
        if stage == "test":
            self._check_finite_probabilities(probabilities)
        self.metrics[f"{stage}_metrics"].update(probabilities, y)
        if stage == "test":  # kept per window for predictions.csv, so any metric can be recomputed from disk
            self._test_batches.append(
                {
                    "probabilities": probabilities.float().cpu(),
                    "y": y.cpu(),
                    **{k: batch[k].cpu() for k in ("subject", "record", "window") if k in batch},
                }
            )
        return loss_and_sums(self._epoch_sums[stage], loss, len(y))

    def _record_step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        """A record-level model: batches hold whole records; each record's probability is the attention-weighted
        mean of its windows' (``models/mil.py``), its loss the cross-entropy of that against the record's label.
        Losses and metrics count records; test keeps every window's probabilities and weight for predictions.csv."""
        logits, scores = self.net.forward_with_attention(batch["x"])
        records, record = torch.unique(batch["record"], return_inverse=True)
        weights = record_weights(scores, record)
        window_probabilities = logits.softmax(dim=-1)
        probabilities = pool_records(window_probabilities, weights, record)
        y = torch.zeros(len(records), dtype=batch["y"].dtype, device=batch["y"].device)
        y = y.scatter(0, record, batch["y"])  # the windows of a record share its label
        loss = F.nll_loss(torch.log(probabilities.clamp_min(1e-12)), y)
        if stage == "train":
            k = self.num_classes
            counts = torch.bincount(y * k + probabilities.detach().argmax(dim=-1), minlength=k * k).view(k, k)
            sums = self._epoch_sums["train"]
            sums["confusion"] = sums["confusion"] + counts
            return loss_and_sums(sums, loss, len(y))
        probabilities = probabilities.detach()
        if stage == "test":
            self._check_finite_probabilities(probabilities)
            self._test_batches.append(
                {
                    "probabilities": window_probabilities.detach().float().cpu(),
                    "weight": weights.detach().float().cpu(),
                    "y": batch["y"].cpu(),
                    **{k: batch[k].cpu() for k in ("subject", "record", "window")},
                }
            )
        self.metrics[f"{stage}_metrics"].update(probabilities, y)
        return loss_and_sums(self._epoch_sums[stage], loss, len(y))

    def _training_loss(self, logits: torch.Tensor, y: torch.Tensor, mixed: torch.Tensor | None = None) -> torch.Tensor:
        sums = self._epoch_sums["train"]
        if mixed is not None:
            loss = soft_cross_entropy(logits, mixed)
        elif not self.smoothing.active:
            loss = F.cross_entropy(logits, y)  # = soft cross-entropy with one-hot targets, fused
        else:
            targets = self._training_targets(logits, y)
            # the smoothing actually applied: mean target mass moved off the true class, times K / (K - 1)
            true_mass = targets.detach().gather(1, y[:, None]).sum()
            sums["label_smoothing_epsilon"] += (len(y) - true_mass) * self.num_classes / (self.num_classes - 1)
            loss = soft_cross_entropy(logits, targets)
        # training figures from a confusion matrix counted here: a torchmetrics update costs more than a small
        # network's step; validation and test use the full torchmetrics collections
        k = self.num_classes
        counts = torch.bincount(y * k + logits.detach().argmax(dim=-1), minlength=k * k).view(k, k)
        sums["confusion"] = sums["confusion"] + counts
        return loss_and_sums(sums, loss, len(y))

    def _training_targets(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.online_smoothing is not None:
            return self.online_smoothing.targets(logits, y)
        total = self.trainer.max_epochs if self.trainer.max_epochs and self.trainer.max_epochs > 0 else 1
        return smoothed_targets(
            y,
            self.num_classes,
            self.smoothing.name,
            self.smoothing.epsilon,
            epoch=self.current_epoch,
            total_epochs=total,
            schedule=self.smoothing.schedule,
            switch_epoch=self.smoothing.switch_epoch,
            logits=logits,
        )

    def _reset_epoch_sums(self, stage: str) -> None:
        sums: dict[str, Any] = {"loss": 0.0, "windows": 0}
        if stage == "train":
            sums["confusion"] = 0
            if self.smoothing.active:
                sums["label_smoothing_epsilon"] = 0.0
        self._epoch_sums[stage] = sums

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def _check_finite_probabilities(self, probabilities: torch.Tensor) -> None:
        bad = int((~torch.isfinite(probabilities)).any(dim=-1).sum())
        if bad:  # an argmax of NaN is class 0: a diverged network would score perfectly on healthy subjects
            raise DivergedError(
                f"the network gave non-finite test probabilities for {bad} of {len(probabilities)} windows of a batch: "
                f"its weights diverged; lower model.optimizer.lr ({self.optimizer_cfg['lr']}) and train again"
            )

    def _check_finite_loss(self, stage: str, sums: dict[str, Any]) -> None:
        """A NaN or infinite loss stops the run before any checkpoint or result of that epoch is written."""
        if sums["windows"] and not torch.isfinite(torch.as_tensor(sums["loss"])).all():
            name = "training" if stage == "train" else "validation"
            raise DivergedError(
                f"training diverged: the {name} loss became {float(sums['loss'])} in epoch {self.current_epoch}; "
                f"lower model.optimizer.lr (now {self.optimizer_cfg['lr']}), or check data.normalization and "
                f"label_smoothing; no metrics.json was written"
            )

    def _summed_over_processes(self, sums: dict[str, Any]) -> dict[str, Any]:
        """An epoch's sums over every process of a multi-process (DDP) run, each of which saw its share of the
        batches: the loss, window count, training confusion and smoothing mass, so that every process logs, checks
        and selects on the same whole-set figures."""
        if self._trainer is None or self.trainer.world_size <= 1:
            return sums
        reduce = self.trainer.strategy.reduce
        return {
            k: reduce(torch.as_tensor(v, dtype=torch.float64, device=self.device), reduce_op="sum")
            for k, v in sums.items()
        }

    def _end_epoch(self, stage: str) -> None:
        sums = self._epoch_sums[stage] = self._summed_over_processes(self._epoch_sums[stage])
        self._check_finite_loss(stage, sums)
        if stage == "val":  # validation ends before the epoch's checkpoints and training-epoch end: check both
            self._check_finite_loss("train", self._summed_over_processes(self._epoch_sums["train"]))
        self._reset_epoch_sums(stage)
        if stage == "train":
            self._end_training_epoch(sums)
            return
        if sums["windows"]:
            self.log(f"{stage}/loss", sums["loss"] / sums["windows"], prog_bar=stage != "test")
        collection = self.metrics[f"{stage}_metrics"]
        with warnings.catch_warnings():  # absent classes (one subject per test fold) are handled below
            warnings.simplefilter("ignore")
            scalars, confusion = compute_stage_metrics(collection, self.class_names)
        collection.reset()
        loggable = {f"{stage}/{k}": v for k, v in scalars.items() if not math.isnan(v)}
        bal_acc = loggable.pop(f"{stage}/bal_acc", None)
        self.log_dict(loggable)
        if bal_acc is not None:
            self.log(f"{stage}/bal_acc", bal_acc, prog_bar=True)
        if stage == "test":
            self.test_results = {f"test/{k}": v for k, v in scalars.items()}
            self.test_confusion = confusion

    def _end_training_epoch(self, sums: dict[str, Any]) -> None:
        if not sums["windows"]:
            return
        confusion = sums["confusion"].cpu()
        scalars = {
            "acc": float(confusion.trace() / confusion.sum()),
            **metrics_from_confusion(confusion, self.class_names),
        }
        self.log("train/loss", sums["loss"] / sums["windows"], prog_bar=True)
        self.log("train/bal_acc", scalars.pop("bal_acc"), prog_bar=True)
        extra = {f"train/{k}": v for k, v in scalars.items() if not math.isnan(v)}
        if "label_smoothing_epsilon" in sums:
            extra["train/label_smoothing_epsilon"] = float(sums["label_smoothing_epsilon"] / sums["windows"])
        # straight to the loggers: each self.log call costs ~1 ms, and no callback monitors these
        for logger in self.loggers:
            logger.log_metrics({**extra, "epoch": self.current_epoch}, step=self.global_step)

    def on_train_epoch_end(self) -> None:
        self._end_epoch("train")
        if self.online_smoothing is not None:
            if self.trainer.world_size > 1:  # the next epoch's targets from every process's correct windows
                own = self.online_smoothing.accumulator.to(self.device)
                self.online_smoothing.accumulator = self.trainer.strategy.reduce(own, reduce_op="sum")
            self.online_smoothing.end_epoch()

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self._end_epoch("val")
        else:
            self.metrics["val_metrics"].reset()
            self._reset_epoch_sums("val")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # a resumed run draws the same shuffles and dropout masks as an uninterrupted one (Lightning saves no RNG)
        checkpoint["rng_states"] = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # only a resumed fit continues the saved random sequence; testing or predicting with saved weights must not
        # rewind the caller's global random state
        resuming = self._trainer is not None and self._trainer.state.fn == TrainerFn.FITTING
        states = checkpoint.get("rng_states")
        if states is not None and resuming:
            torch.set_rng_state(states["torch"])
            if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(states["cuda"])

    def on_test_epoch_start(self) -> None:
        self._test_batches = []

    def on_test_epoch_end(self) -> None:
        self._end_epoch("test")
        keys = self._test_batches[0].keys() if self._test_batches else ()
        self.test_predictions = {k: torch.cat([b[k] for b in self._test_batches]) for k in keys}
        self._test_batches = []

    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.net.parameters(), self.optimizer_cfg)
        sched = dict(self.scheduler_cfg)
        kind = sched.pop("name")
        if kind == "none":
            return optimizer
        if kind == "plateau":
            monitor = sched.pop("monitor", "val/loss")
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer,
                mode="max" if monitor.endswith(("acc", "f1_macro", "auroc_macro")) else "min",
                factor=sched.get("factor", 0.1),
                patience=sched.get("patience", 5),
                min_lr=sched.get("min_lr", 0.0),
            )
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": monitor}}
        max_epochs = self.trainer.max_epochs if self.trainer.max_epochs and self.trainer.max_epochs > 0 else 100
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max_epochs, eta_min=sched.get("min_lr", 0.0)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


def loss_and_sums(sums: dict[str, Any], loss: torch.Tensor, windows: int) -> torch.Tensor:
    """Adds the batch to its stage's epoch sums; the mean is logged once per epoch, because a ``self.log`` call
    on every step costs about 0.5 ms on a CPU (as much as a small network's whole step)."""
    sums["loss"] += loss.detach() * windows
    sums["windows"] += windows
    return loss


def build_optimizer(params: Any, settings: dict[str, Any]) -> torch.optim.Optimizer:
    """Adam / AdamW (``eps``) or SGD (``momentum``) from a ``model.optimizer`` dict."""
    cfg = {"weight_decay": 0.0, **settings}
    name, lr, weight_decay = cfg["name"], cfg["lr"], cfg["weight_decay"]
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, eps=cfg.get("eps", 1e-8))
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, eps=cfg.get("eps", 1e-8))
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=cfg.get("momentum", 0.9))


def _check_choice(setting: str, value: Any, choices: Any) -> None:
    if value not in choices:
        raise ConfigError(f"{setting}={value!r} is unknown; available: {', '.join(sorted(choices))}")
