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
    the order their extractor names them; NaN marks a value that could not be measured (a record with no motor unit
    has no mean MUAP duration) and is read as the training rows' mean (0 once standardised).
    Output: logits (batch, num_classes).
    Parameters: in_features x num_classes + num_classes (e.g. 69 x 3 + 3 = 210), plus the standardisation's
    mean and scale as buffers.
    Paper: none; the baseline both papers omit. Fitted by ``fit_feature_linear``, not by gradient epochs."""

    input_kind = "features"  # what the DataModule serves as x: feature vectors (data.features), not windows
    closed_form = True  # fitted by fit_feature_linear, not by epochs of an optimizer

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
        return self.linear(torch.nan_to_num((x - self.mean) / self.scale, nan=0.0))


def standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale of each column over its measured (non-NaN) rows; scale 1 where a column is constant, mean 0
    where no row is measured."""
    measured = ~np.isnan(x)
    count = measured.sum(axis=0)
    filled = np.where(measured, x, 0.0)
    mean = filled.sum(axis=0) / np.maximum(count, 1)
    scale = np.sqrt(np.where(measured, (x - mean) ** 2, 0.0).sum(axis=0) / np.maximum(count, 1))
    return mean, np.where(scale > 1e-12, scale, 1.0)


def set_standardisation_buffers(net: nn.Module, features: np.ndarray) -> None:
    """Set ``net``'s ``mean`` and ``scale`` buffers from the training rows' ``features`` (``standardisation``)."""
    mean, scale = standardisation(np.asarray(features, dtype=np.float64))
    with torch.no_grad():
        net.mean.copy_(torch.from_numpy(mean))
        net.scale.copy_(torch.from_numpy(scale))


def standardised(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``x`` standardised, an unmeasured (NaN) value put at the mean (0)."""
    return np.nan_to_num((x - mean) / scale, nan=0.0)


def fit_logistic_regression(
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    l2: float,
    init: tuple[np.ndarray, np.ndarray] | None = None,
    max_iter: int = 200,
    sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (num_classes, features) and bias minimising the class-balanced mean cross-entropy of standardised
    ``x`` plus ``l2 / 2 * ||W||^2`` (the bias is not penalised). ``sample_weight`` (rows,): each row's weight
    (``data.weight_by``; None: all 1), the classes then balanced on their weighted totals, so a row of weight 1/3 counts
    as a third of a row. Convex: L-BFGS reaches the unique optimum, from zeros or from ``init`` (a nearby solution:
    fewer iterations)."""
    if l2 <= 0:
        raise ValueError(f"l2 must be > 0, got {l2}")
    xt = torch.from_numpy(np.asarray(x, dtype=np.float64))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    rows = (
        torch.ones(len(yt), dtype=torch.float64)
        if sample_weight is None
        else torch.from_numpy(np.asarray(sample_weight, dtype=np.float64))
    )
    totals = torch.zeros(num_classes, dtype=torch.float64).index_add_(0, yt, rows)
    class_weight = torch.where(totals > 0, rows.sum() / (num_classes * totals.clamp(min=1e-300)), 0.0)
    row_weight = rows * class_weight[yt]
    if init is None:
        init = (np.zeros((num_classes, xt.shape[1])), np.zeros(num_classes))
    weight = torch.tensor(init[0], dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(init[1], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9, tolerance_change=1e-12,
        line_search_fn="strong_wolfe",
    )  # fmt: skip

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        nll = nn.functional.cross_entropy(xt @ weight.T + bias, yt, reduction="none")
        loss = (row_weight * nll).sum() / row_weight.sum() + 0.5 * l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach().numpy(), bias.detach().numpy()


def balanced_accuracy(y: np.ndarray, predicted: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Mean recall over the classes present in ``y`` (each class's rows weighted by ``weights``; None: alike)."""
    w = np.ones(len(y)) if weights is None else weights
    return float(np.mean([np.average(predicted[y == c] == c, weights=w[y == c]) for c in np.unique(y)]))


def balanced_log_loss(y: np.ndarray, logits: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Mean over the classes present in ``y`` of their rows' (``weights``-weighted) mean cross-entropy (natural
    log): the class-balanced loss the fit minimises, as a held-out score."""
    w = np.ones(len(y)) if weights is None else weights
    shifted = logits - logits.max(axis=1, keepdims=True)
    nll = np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(y)), y]
    return float(np.mean([np.average(nll[y == c], weights=w[y == c]) for c in np.unique(y)]))


# How the inner cross-validation scores a penalty strength on held-out subjects, and whether lower is better
INNER_SCORES = {"log_loss": True, "bal_acc": False}
# The settings of that choice (model.*): they mean something only to a model fitted in closed form
INNER_CHOICE_KEYS = ("l2_grid", "inner_folds", "inner_repeats", "inner_score")
# The chosen strength's inner scores in a closed-form run's metrics (fit_feature_linear's inner_<score>)
INNER_METRICS = tuple(f"inner_{score}" for score in INNER_SCORES)


def check_inner_choice(l2_grid: list[float], inner_score: str) -> None:
    """Refuse a penalty grid or inner score that cannot choose anything (ValueError naming the setting)."""
    if not l2_grid or any(not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0 for v in l2_grid):
        raise ValueError(f"model.l2_grid={l2_grid} must be a non-empty list of positive numbers")
    if inner_score not in INNER_SCORES:
        raise ValueError(f"model.inner_score={inner_score!r} is unknown; use one of {', '.join(INNER_SCORES)}")


def inner_held_out_logits(
    x: np.ndarray,
    y: np.ndarray,
    draws: np.ndarray,
    l2_grid: list[float],
    num_classes: int,
    sample_weight: np.ndarray | None = None,
) -> dict[float, np.ndarray]:
    """Out-of-fold logits of each L2 strength: for each draw of the inner folds (``draws``: (repeats, rows), each
    row's fold) and each fold, standardise on and fit to the other folds, then score the fold's rows. Returns
    ``{l2: (repeats, rows, num_classes)}``; a row of one draw is scored by the one model that did not see it."""
    grid = sorted(float(v) for v in l2_grid)
    logits = {l2: np.zeros((len(draws), len(y), num_classes)) for l2 in grid}
    for draw, folds in enumerate(draws):
        for fold in np.unique(folds):
            held_out = folds == fold
            mean, scale = standardisation(x[~held_out])
            fit_x, score_x = standardised(x[~held_out], mean, scale), standardised(x[held_out], mean, scale)
            start, fit_weight = None, None if sample_weight is None else sample_weight[~held_out]
            for l2 in grid[::-1]:  # strongest first: each solution starts the next, weaker-penalty fit
                start = fit_logistic_regression(
                    fit_x, y[~held_out], num_classes, l2, init=start, sample_weight=fit_weight
                )
                logits[l2][draw, held_out] = score_x @ start[0].T + start[1]
    return logits


def inner_fold_mean(score, y: np.ndarray, draws: np.ndarray, held_out_logits: np.ndarray, weights: np.ndarray) -> float:
    """``score(labels, logits, weights)`` of each inner fold of each draw, averaged: each fold counts once,
    whatever its size."""
    return float(np.mean([
        score(y[folds == fold], held_out_logits[draw, folds == fold], weights[folds == fold])
        for draw, folds in enumerate(draws) for fold in np.unique(folds)
    ]))  # fmt: skip


def fit_feature_linear(
    net: FeatureLinear,
    x: np.ndarray,
    y: np.ndarray,
    inner_folds: np.ndarray,
    l2_grid: list[float],
    inner_score: str = "log_loss",
    sample_weight: np.ndarray | None = None,
) -> dict:
    """Fit ``net`` in place. The L2 strength: for each one, fit on all inner folds but one (standardised on them)
    and score the one left out, in turn; take the best mean score (ties: the strongest penalty), then standardise
    on and refit to all rows with it. ``inner_folds``: each row's inner fold, (rows,) or (repeats, rows) for
    repeated draws of the folds, whose scores are averaged too; rows of one subject share a fold, so the score is
    subject-independent. ``inner_score``: ``log_loss`` (class-balanced held-out cross-entropy: a proper score,
    smooth in the strength, and it rewards the calibrated probabilities that record pooling averages) or
    ``bal_acc`` (balanced accuracy: coarse, ties and flips between close strengths). ``sample_weight``: each
    row's weight in the fits and in the held-out scores (``data.weight_by``; None: all 1). Returns the chosen ``l2``,
    both inner scores of it and of every strength."""
    check_inner_choice(l2_grid, inner_score)
    draws = np.atleast_2d(np.asarray(inner_folds))
    if draws.shape[1] != len(y) or any(len(np.unique(folds)) < 2 for folds in draws):
        raise ValueError("choosing the L2 strength needs at least two inner folds of subjects")
    num_classes = net.linear.out_features
    weights = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    logits = inner_held_out_logits(x, y, draws, l2_grid, num_classes, weights)
    mean_loss = {l2: inner_fold_mean(balanced_log_loss, y, draws, held, weights) for l2, held in logits.items()}
    mean_accuracy = {
        l2: inner_fold_mean(lambda t, z, w: balanced_accuracy(t, z.argmax(axis=1), w), y, draws, held, weights)
        for l2, held in logits.items()
    }
    judged = mean_loss if INNER_SCORES[inner_score] else mean_accuracy
    best = (min if INNER_SCORES[inner_score] else max)(judged.values())
    chosen = max(l2 for l2, v in judged.items() if v == best)
    mean, scale = standardisation(x)
    weight, bias = fit_logistic_regression(standardised(x, mean, scale), y, num_classes, chosen, sample_weight=weights)
    with torch.no_grad():
        net.mean.copy_(torch.from_numpy(mean))
        net.scale.copy_(torch.from_numpy(scale))
        net.linear.weight.copy_(torch.from_numpy(weight))
        net.linear.bias.copy_(torch.from_numpy(bias))
    return {
        "l2": chosen,
        "inner_score": inner_score,
        "inner_log_loss": mean_loss[chosen],
        "inner_bal_acc": mean_accuracy[chosen],
        "inner_log_loss_by_l2": {f"{k:g}": v for k, v in mean_loss.items()},
        "inner_bal_acc_by_l2": {f"{k:g}": v for k, v in mean_accuracy.items()},
    }
