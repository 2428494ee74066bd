"""Label smoothing as pure functions of (labels, number of classes, settings).

- ``fixed`` (Szegedy et al. 2016): q = (1 - eps) * onehot(y) + eps / K; loss = cross-entropy(p, q).
- ``schedule``: eps decays over epochs: linear eps0 (1 - t/T), cosine eps0 (1 + cos(pi t/T)) / 2, or two-stage
  (eps0 before ``switch_epoch``, then 0; Xu et al. 2020).
- ``confidence``: a per-sample eps = eps_max * p(true class), from the model's own (detached) confidence.
- ``online`` (Online Label Smoothing, Zhang et al., IEEE TIP 2021): class-wise soft targets S[:, y] learned from the
  previous epoch's correctly classified samples; q = alpha * onehot(y) + (1 - alpha) * S[:, y].
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from emg_lightning.runtime.errors import ConfigError

STRATEGIES = ("none", "fixed", "schedule", "confidence", "online")
SCHEDULES = ("linear", "cosine", "two_stage")


@dataclass(frozen=True)
class LabelSmoothing:
    """The ``label_smoothing.*`` settings, checked once here (the one place that says what each may be)."""

    name: str = "none"
    epsilon: float = 0.0  # fixed, schedule: the share of target mass moved off the true class; confidence: its max
    alpha: float = 0.5  # online: the weight of the one-hot target
    schedule: str = "linear"  # schedule: linear | cosine | two_stage
    switch_epoch: int | None = None  # two_stage: null = half of max_epochs

    def __post_init__(self) -> None:
        if self.name not in STRATEGIES:
            raise ConfigError(f"label_smoothing.name={self.name!r} is unknown; available: {', '.join(STRATEGIES)}")
        number = isinstance(self.epsilon, int | float) and not isinstance(self.epsilon, bool)
        if self.name != "none" and (not number or not 0 <= self.epsilon < 1):
            raise ConfigError(
                f"label_smoothing.epsilon={self.epsilon!r} must be in [0, 1): the share of target mass moved off the "
                f"true class (1 would leave none on it)"
            )
        if not isinstance(self.alpha, int | float) or isinstance(self.alpha, bool) or not 0 <= self.alpha <= 1:
            raise ConfigError(f"label_smoothing.alpha={self.alpha!r} must be in [0, 1]")
        if self.schedule not in SCHEDULES:
            raise ConfigError(
                f"label_smoothing.schedule={self.schedule!r} is unknown; available: {', '.join(SCHEDULES)}"
            )
        if self.switch_epoch is not None and (not isinstance(self.switch_epoch, int) or self.switch_epoch < 0):
            raise ConfigError(f"label_smoothing.switch_epoch={self.switch_epoch!r} must be an epoch number or null")

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> LabelSmoothing:
        settings = dict(settings or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ConfigError(f"label_smoothing has no settings {unknown}; known: {sorted(known)}")
        return cls(**settings)

    @property
    def active(self) -> bool:
        return self.name != "none"


def fixed_label_smoothing(labels: torch.Tensor, num_classes: int, epsilon: float | torch.Tensor) -> torch.Tensor:
    """Soft targets (batch, K): 1 - eps + eps/K on the true class, eps/K elsewhere; eps a number or per sample."""
    eps = torch.as_tensor(epsilon, dtype=torch.float32, device=labels.device)
    if eps.numel() and (eps.min() < 0 or eps.max() >= 1):
        raise ValueError(f"label smoothing epsilon must be in [0, 1), got {epsilon}")
    eps = eps.reshape(-1, 1) if eps.ndim else eps
    onehot = F.one_hot(labels, num_classes).to(torch.float32)
    return onehot * (1.0 - eps) + eps / num_classes


def scheduled_epsilon(
    epsilon: float, epoch: int, total_epochs: int, kind: str, switch_epoch: int | None = None
) -> float:
    """eps at ``epoch`` (0-based) of ``total_epochs``."""
    if kind not in SCHEDULES:
        raise ValueError(f"label_smoothing.schedule={kind!r} is unknown; available: {', '.join(SCHEDULES)}")
    progress = min(max(epoch / max(total_epochs, 1), 0.0), 1.0)
    if kind == "linear":
        return epsilon * (1.0 - progress)
    if kind == "cosine":
        return epsilon * 0.5 * (1.0 + math.cos(math.pi * progress))
    switch = total_epochs // 2 if switch_epoch is None else switch_epoch
    return epsilon if epoch < switch else 0.0


def confidence_epsilon(logits: torch.Tensor, labels: torch.Tensor, epsilon_max: float) -> torch.Tensor:
    """Per-sample eps = eps_max * p(true class), without gradient: confident samples are smoothed more."""
    with torch.no_grad():
        return epsilon_max * logits.softmax(dim=-1).gather(1, labels[:, None]).squeeze(1)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_k q_k log softmax(logits)_k."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def smoothed_targets(
    labels: torch.Tensor,
    num_classes: int,
    strategy: str,
    epsilon: float = 0.0,
    epoch: int = 0,
    total_epochs: int = 1,
    schedule: str = "linear",
    switch_epoch: int | None = None,
    logits: torch.Tensor | None = None,
) -> torch.Tensor:
    if strategy == "none":
        return fixed_label_smoothing(labels, num_classes, 0.0)
    if strategy == "fixed":
        return fixed_label_smoothing(labels, num_classes, epsilon)
    if strategy == "schedule":
        eps = scheduled_epsilon(epsilon, epoch, total_epochs, schedule, switch_epoch)
        return fixed_label_smoothing(labels, num_classes, eps)
    if strategy == "confidence":
        if logits is None:
            raise ValueError("confidence label smoothing needs the logits")
        return fixed_label_smoothing(labels, num_classes, confidence_epsilon(logits, labels, epsilon))
    raise ValueError(f"label_smoothing.name={strategy!r} is unknown; available: {', '.join(STRATEGIES)}")


class OnlineLabelSmoothing(torch.nn.Module):
    """State of Online Label Smoothing. ``soft`` (K x K, column y = soft target of class y) starts uniform; during an
    epoch the predicted distributions of correctly classified training samples are summed per true class, and
    ``end_epoch`` normalises those sums into the next epoch's ``soft`` (a class with no correct sample keeps its
    column). ``soft`` is a buffer; the running sums are the module's extra state, not a buffer, because several
    processes (DDP) each sum their own share and DDP overwrites every buffer with rank 0's at each step (the
    classifier sums them over processes before ``end_epoch``). Both are saved in checkpoints and restored on resume."""

    def __init__(self, num_classes: int, alpha: float) -> None:
        super().__init__()
        self.alpha = alpha  # checked with the other settings (LabelSmoothing)
        self.register_buffer("soft", torch.full((num_classes, num_classes), 1.0 / num_classes))
        self.accumulator = torch.zeros(num_classes, num_classes)

    def targets(self, logits: torch.Tensor, labels: torch.Tensor, accumulate: bool = True) -> torch.Tensor:
        num_classes = self.soft.shape[0]
        if accumulate:
            with torch.no_grad():
                probabilities = logits.softmax(dim=-1)
                correct = probabilities.argmax(dim=-1) == labels
                self.accumulator = self.accumulator.to(probabilities.device)  # not moved with the module
                # column y gathers the distributions predicted for correctly classified samples of class y
                self.accumulator.index_add_(1, labels[correct], probabilities[correct].T.float())
        onehot = F.one_hot(labels, num_classes).to(torch.float32)
        return self.alpha * onehot + (1.0 - self.alpha) * self.soft[:, labels].T

    def end_epoch(self) -> None:
        accumulator = self.accumulator.to(self.soft.device)
        totals = accumulator.sum(dim=0)
        seen = totals > 0
        self.soft[:, seen] = accumulator[:, seen] / totals[seen]
        self.accumulator = torch.zeros_like(accumulator)

    def get_extra_state(self) -> dict[str, torch.Tensor]:
        return {"accumulator": self.accumulator.cpu()}

    def set_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        self.accumulator = state["accumulator"].clone()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # checkpoints written before the sums became extra state hold them as a buffer
        if f"{prefix}accumulator" in state_dict:
            state_dict[f"{prefix}_extra_state"] = {"accumulator": state_dict.pop(f"{prefix}accumulator")}
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
