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

from emg_lightning.errors import DataError
from emg_lightning.metrics.classification import metrics_from_confusion

LEVELS = ("window", "record", "subject")
HEADLINE = ("acc", "bal_acc", "f1_macro")


# Probabilities are written with 6 decimals: a row may sum to 1 within this rounding
SUM_TOLERANCE = 1e-3
REQUIRED_COLUMNS = ("fold", "seed", "subject", "record", "window", "label")


def read_predictions(path: str | Path) -> tuple[list[str], list[dict]]:
    """(class names, rows) of one predictions.csv; probabilities as floats.

    Refuses, naming the file and line, what would silently change a figure: a missing column, a row with another
    number of fields, a label that is not a class, a probability that is not a finite number in [0, 1], and a row
    whose probabilities do not sum to 1."""
    path = Path(path)
    try:
        with open(path, newline="") as handle:
            lines = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot be read as CSV ({exc})") from exc
    header = lines[0] if lines else []
    classes = [c[2:] for c in header if c.startswith("p_")]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing or len(classes) < 2:
        raise DataError(f"{path}: not a predictions.csv (missing columns {missing or 'p_<class>'}): rerun that fold")
    rows = []
    for number, fields in enumerate(lines[1:], start=2):
        if len(fields) != len(header):
            raise DataError(
                f"{path}, line {number}: {len(fields)} fields, the header has {len(header)}: the file is "
                f"damaged; rerun that fold"
            )
        row = dict(zip(header, fields))
        for column in ("label", "predicted"):
            if column in row and row[column] not in classes:
                raise DataError(f"{path}, line {number}: {column} {row[column]!r} is not one of {classes}")
        probabilities = []
        for c in classes:
            text = row[f"p_{c}"]
            try:
                value = float(text)
            except ValueError:
                raise DataError(f"{path}, line {number}: p_{c}={text!r} is not a number") from None
            if not math.isfinite(value):
                raise DataError(
                    f"{path}, line {number}: p_{c} is not a finite number ({text}): the fold's network "
                    f"diverged or the file is damaged; rerun that fold"
                )
            if not 0.0 <= value <= 1.0:
                raise DataError(f"{path}, line {number}: p_{c}={text} is outside [0, 1]")
            probabilities.append(value)
        if abs(sum(probabilities) - 1.0) > SUM_TOLERANCE:
            raise DataError(f"{path}, line {number}: the probabilities sum to {sum(probabilities):g}, not 1")
        row["probabilities"] = np.array(probabilities)
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: no test windows: a fold must test at least one window; rerun that fold")
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
