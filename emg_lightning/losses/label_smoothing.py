"""Label smoothing as pure functions of (labels, number of classes, settings).

Fixed smoothing (Szegedy et al. 2016): q = (1 - eps) * onehot(y) + eps / K; loss = cross-entropy(p, q).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

STRATEGIES = ("none", "fixed")


def fixed_label_smoothing(labels: torch.Tensor, num_classes: int, epsilon: float) -> torch.Tensor:
    """Soft targets (batch, K): 1 - eps + eps/K on the true class, eps/K elsewhere."""
    if not 0.0 <= epsilon < 1.0:
        raise ValueError(f"label smoothing epsilon must be in [0, 1), got {epsilon}")
    onehot = F.one_hot(labels, num_classes).to(torch.float32)
    return onehot * (1.0 - epsilon) + epsilon / num_classes


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_k q_k log softmax(logits)_k."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def smoothed_targets(labels: torch.Tensor, num_classes: int, strategy: str, epsilon: float = 0.0) -> torch.Tensor:
    if strategy == "none":
        return fixed_label_smoothing(labels, num_classes, 0.0)
    if strategy == "fixed":
        return fixed_label_smoothing(labels, num_classes, epsilon)
    raise ValueError(f"label_smoothing.name={strategy!r} is unknown; available: {', '.join(STRATEGIES)}")
