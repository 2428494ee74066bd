"""One torchmetrics collection per stage, every ``average=`` explicit and every metric named by what it is.

- ``acc``: accuracy over windows (micro average).
- ``bal_acc``: balanced accuracy = macro-averaged recall.
- ``f1_macro``: macro F1.
- ``recall/<class>`` (sensitivity) and ``specificity/<class>``: per class.
- ``auroc_macro``: one-vs-rest AUROC, averaged over the classes present (with positives and negatives).
- ``confusion``: confusion matrix (rows true, columns predicted).
- ``ece``: expected calibration error (15 equal-width confidence bins, L1), the figure label smoothing changes.

A leave-one-subject-out test set holds one class only: recall of the absent classes is undefined, and macro
averages then mean little. ``compute_stage_metrics`` reports such entries as NaN and averages over the classes
present; subject- and record-level figures need predictions pooled over folds.
"""

from __future__ import annotations

import math
import warnings

import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassCalibrationError,
    MulticlassConfusionMatrix,
)


def make_metrics(num_classes: int) -> MetricCollection:
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            # per class; the macro average is taken below over the classes present (torchmetrics counts an absent class
            # as AUROC 0: two perfectly separated classes of three would report 0.667)
            "auroc": MulticlassAUROC(num_classes, average=None),
            "confusion": MulticlassConfusionMatrix(num_classes),
            "ece": MulticlassCalibrationError(num_classes, n_bins=15, norm="l1"),
        }
    )


def metrics_from_confusion(confusion: torch.Tensor, class_names: list[str]) -> dict[str, float]:
    """Balanced accuracy, macro F1, per-class sensitivity and specificity from a confusion matrix.

    Classes absent from the targets have undefined recall (NaN) and are left out of the macro averages.
    """
    cm = confusion.double()
    total = cm.sum()
    tp = cm.diag()
    support = cm.sum(dim=1)
    predicted = cm.sum(dim=0)
    out: dict[str, float] = {}
    recalls, f1s = [], []
    for k, name in enumerate(class_names):
        recall = (tp[k] / support[k]).item() if support[k] > 0 else math.nan
        negatives = total - support[k]
        specificity = ((negatives - (predicted[k] - tp[k])) / negatives).item() if negatives > 0 else math.nan
        out[f"recall/{name}"] = recall
        out[f"specificity/{name}"] = specificity
        if support[k] > 0:
            recalls.append(recall)
            precision = (tp[k] / predicted[k]).item() if predicted[k] > 0 else 0.0
            f1s.append(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))
    out["bal_acc"] = sum(recalls) / len(recalls) if recalls else math.nan
    out["f1_macro"] = sum(f1s) / len(f1s) if f1s else math.nan
    return out


def compute_stage_metrics(collection: MetricCollection, class_names: list[str]) -> tuple[dict[str, float], list]:
    """Scalars for logging and the confusion matrix as nested lists."""
    values = collection.compute()
    confusion = values["confusion"]
    present = int((confusion.sum(dim=1) > 0).sum())
    scalars = {"acc": values["acc"].item(), "ece": values["ece"].item()}
    # AUROC needs positives and negatives of a class: the macro average runs over the classes that have both
    support = confusion.sum(dim=1)
    defined = (support > 0) & (support < support.sum())
    per_class = values["auroc"].reshape(-1)
    scalars["auroc_macro"] = per_class[defined].mean().item() if present > 1 else math.nan
    scalars.update(metrics_from_confusion(confusion, class_names))
    return scalars, confusion.long().tolist()


def test_results_of(
    probabilities: torch.Tensor, y: torch.Tensor, class_names: list[str]
) -> tuple[dict[str, float], list]:
    """``test/<metric>`` scalars and the confusion matrix of these predictions, computed as a test epoch computes
    them (for predictions made one per record after the epoch)."""
    collection = make_metrics(len(class_names))
    collection.update(probabilities.float(), y.long())
    with warnings.catch_warnings():  # absent classes (one subject per test fold) are handled in the scalars
        warnings.simplefilter("ignore")
        scalars, confusion = compute_stage_metrics(collection, class_names)
    return {f"test/{k}": v for k, v in scalars.items()}, confusion
