"""A linear classifier over per-window feature vectors, fitted in closed form (L-BFGS to the optimum) rather than
by epochs of SGD: multinomial logistic regression with an L2 penalty, on features standardised with the whole
training set's mean and standard deviation."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class FeatureLinear(nn.Module):
    """Standardise, then softmax regression: the quantitative-EMG baseline's classifier.

    Input: (batch, in_features) float32 feature vectors (``data.features``, e.g. qEMG features of 1-s windows), in
    the order their extractor names them.
    Output: logits (batch, num_classes).
    Parameters: in_features x num_classes + num_classes (e.g. 69 x 3 + 3 = 210), plus the standardisation's
    mean and scale as buffers.
    Paper: none; the baseline both papers omit. Fitted by ``fit_feature_linear``, not by gradient epochs."""

    input_kind = "features"  # what the DataModule serves as x: feature vectors (data.features), not windows

    def __init__(self, num_classes: int = 3, in_features: int = 1) -> None:
        super().__init__()
        if not isinstance(in_features, int) or in_features < 1:
            raise ValueError(f"in_features must be a positive integer, got {in_features!r}")
        self.register_buffer("mean", torch.zeros(in_features))
        self.register_buffer("scale", torch.ones(in_features))
        self.linear = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.mean.numel():
            raise ValueError(
                f"FeatureLinear expects (batch, {self.mean.numel()}) feature vectors, got {tuple(x.shape)}: "
                f"set data.features to the feature set it was built for"
            )
        return self.linear((x - self.mean) / self.scale)


def standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale of each column over all rows (scale 1 where a column is constant)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    return mean, np.where(scale > 1e-12, scale, 1.0)


def fit_logistic_regression(
    x: np.ndarray, y: np.ndarray, num_classes: int, l2: float, max_iter: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (num_classes, features) and bias minimising the class-balanced mean cross-entropy of standardised
    ``x`` plus ``l2 / 2 * ||W||^2`` (the bias is not penalised). Convex: L-BFGS reaches the unique optimum."""
    if l2 <= 0:
        raise ValueError(f"l2 must be > 0, got {l2}")
    xt = torch.from_numpy(np.asarray(x, dtype=np.float64))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    counts = torch.bincount(yt, minlength=num_classes).double()
    class_weight = torch.where(counts > 0, len(yt) / (num_classes * counts.clamp(min=1)), torch.zeros_like(counts))
    weight = torch.zeros(num_classes, xt.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9, tolerance_change=1e-12,
        line_search_fn="strong_wolfe",
    )  # fmt: skip

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(xt @ weight.T + bias, yt, weight=class_weight, reduction="sum")
        loss = loss / class_weight[yt].sum() + 0.5 * l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach().numpy(), bias.detach().numpy()


def balanced_accuracy(y: np.ndarray, predicted: np.ndarray) -> float:
    """Mean recall over the classes present in ``y``."""
    return float(np.mean([np.mean(predicted[y == c] == c) for c in np.unique(y)]))


def fit_feature_linear(
    net: FeatureLinear,
    x: np.ndarray,
    y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    l2_grid: list[float],
) -> dict:
    """Fit ``net`` in place: for each L2 strength, standardise on ``x`` and fit on it, score the balanced accuracy
    on the validation set; take the best (ties: the strongest penalty), then standardise on and refit to training +
    validation together with it. Returns the chosen ``l2``, its validation score and every strength's score."""
    if not l2_grid or any(not isinstance(v, (int, float)) or v <= 0 for v in l2_grid):
        raise ValueError(f"model.l2_grid={l2_grid} must be a non-empty list of positive numbers")
    if len(val_y) == 0:
        raise ValueError("the L2 strength is chosen on validation subjects, and there are none")
    num_classes = net.linear.out_features
    mean, scale = standardisation(x)
    scores = {}
    for l2 in sorted(float(v) for v in l2_grid):
        weight, bias = fit_logistic_regression((x - mean) / scale, y, num_classes, l2)
        scores[l2] = balanced_accuracy(val_y, (((val_x - mean) / scale) @ weight.T + bias).argmax(axis=1))
    best = max(scores.values())
    chosen = max(l2 for l2, score in scores.items() if score == best)
    everything = np.concatenate([x, val_x])
    mean, scale = standardisation(everything)
    weight, bias = fit_logistic_regression((everything - mean) / scale, np.concatenate([y, val_y]), num_classes, chosen)
    with torch.no_grad():
        net.mean.copy_(torch.from_numpy(mean))
        net.scale.copy_(torch.from_numpy(scale))
        net.linear.weight.copy_(torch.from_numpy(weight))
        net.linear.bias.copy_(torch.from_numpy(bias))
    return {"l2": chosen, "val_bal_acc": best, "val_bal_acc_by_l2": {f"{k:g}": v for k, v in scores.items()}}
