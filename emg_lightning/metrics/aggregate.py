"""Cross-validation aggregation from the predictions on disk alone (pure functions, no training code).

Levels: ``window`` (each window's own probabilities), ``record`` (mean probability over a record's windows) and
``subject`` (mean probability over the subject's record-level probabilities). Each level pools the test predictions
of all folds of one seed; figures across seeds are the mean and standard deviation of the per-seed figures.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from emg_lightning.metrics.classification import metrics_from_confusion

LEVELS = ("window", "record", "subject")
HEADLINE = ("acc", "bal_acc", "f1_macro")


def read_predictions(path: str | Path) -> tuple[list[str], list[dict]]:
    """(class names, rows) of one predictions.csv; probabilities as floats."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        classes = [c[2:] for c in reader.fieldnames or [] if c.startswith("p_")]
        rows = []
        for row in reader:
            row["probabilities"] = np.array([float(row[f"p_{c}"]) for c in classes])
            rows.append(row)
    return classes, rows


def pool(rows: list[dict], level: str) -> list[tuple[str, np.ndarray]]:
    """(true label, probabilities) per unit of ``level``."""
    if level == "window":
        return [(r["label"], r["probabilities"]) for r in rows]
    by_record: dict[tuple, list] = defaultdict(list)
    for r in rows:
        by_record[(r["seed"], r["subject"], r["record"], r["label"])].append(r["probabilities"])
    records = {key: np.mean(p, axis=0) for key, p in by_record.items()}
    if level == "record":
        return [(key[3], p) for key, p in records.items()]
    if level != "subject":
        raise ValueError(f"unknown level {level!r}; levels: {LEVELS}")
    by_subject: dict[tuple, list] = defaultdict(list)
    for (seed, subject, _, label), p in records.items():
        by_subject[(seed, subject, label)].append(p)
    return [(key[2], np.mean(p, axis=0)) for key, p in by_subject.items()]


def confusion_matrix(units: list[tuple[str, np.ndarray]], classes: list[str]) -> np.ndarray:
    cm = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for label, p in units:
        cm[classes.index(label), int(np.argmax(p))] += 1
    return cm


def scores(cm: np.ndarray, classes: list[str]) -> dict[str, float]:
    total = cm.sum()
    out = {"acc": float(np.trace(cm) / total) if total else math.nan, "n": int(total)}
    out.update(metrics_from_confusion(torch.as_tensor(cm), classes))
    return out


def mean_std(values: list[float]) -> dict[str, float]:
    v = np.array([x for x in values if not math.isnan(x)], dtype=float)
    if len(v) == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": int(len(v))}


def aggregate(folds: list[dict], classes: list[str]) -> dict:
    """``folds``: one dict per finished fold run with ``fold``, ``seed`` and ``rows`` (its predictions)."""
    seeds = sorted({f["seed"] for f in folds}, key=str)
    per_fold = []
    for f in sorted(folds, key=lambda f: (str(f["seed"]), f["fold"])):
        window = scores(confusion_matrix(pool(f["rows"], "window"), classes), classes)
        per_fold.append(
            {
                "fold": f["fold"],
                "seed": f["seed"],
                "test_subjects": sorted({r["subject"] for r in f["rows"]}),
                **{k: window[k] for k in ("n", *HEADLINE)},
            }
        )
    pooled: dict[str, dict] = {}
    for level in LEVELS:
        per_seed = {}
        for seed in seeds:
            rows = [r for f in folds if f["seed"] == seed for r in f["rows"]]
            cm = confusion_matrix(pool(rows, level), classes)
            per_seed[str(seed)] = {"confusion": cm.tolist(), **scores(cm, classes)}
        keys = [k for k in next(iter(per_seed.values())) if k not in ("confusion", "n")]
        pooled[level] = {
            "per_seed": per_seed,
            "across_seeds": {k: mean_std([s[k] for s in per_seed.values()]) for k in keys},
        }
    over_folds = {k: mean_std([f[k] for f in per_fold]) for k in HEADLINE}
    return {
        "classes": classes,
        "seeds": seeds,
        "n_folds": len({f["fold"] for f in folds}),
        "per_fold": per_fold,
        "over_folds_window": over_folds,
        "pooled": pooled,
    }
