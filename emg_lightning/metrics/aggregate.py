"""Cross-validation aggregation from the predictions on disk alone (pure functions, no training code).

Levels: ``window`` (each window's own probabilities), ``record`` (mean probability over a record's windows, or
their weighted mean where predictions.csv has a ``weight`` column: a record-level model's attention) and
``subject`` (mean probability over the subject's record-level probabilities). Each level pools the test predictions
of all folds of one seed; figures across seeds are the mean and standard deviation of the per-seed figures. Rows of
whole records (``window`` = -1: a model whose features describe records) have no window level.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import torch
from scipy import stats

from emg_lightning.metrics.classification import metrics_from_confusion
from emg_lightning.metrics.intervals import clopper_pearson, seed_summary, subject_bootstrap
from emg_lightning.run_files.predictions import WHOLE_RECORD
from emg_lightning.runtime.errors import DataError

LEVELS = ("window", "record", "subject")
HEADLINE = ("acc", "bal_acc", "f1_macro")


def levels_of(rows: list[dict], where: str = "the predictions") -> tuple[str, ...]:
    """The levels ``rows`` have: all three, or record and subject when every row predicts a whole record;
    DataError when ``where`` mixes the two kinds."""
    whole = sum(r.get("window") == WHOLE_RECORD for r in rows)
    if whole and whole != len(rows):
        raise DataError(
            f"{where} mix rows of whole records (window -1) with rows of windows: one CV folder must hold one "
            f"configuration"
        )
    return LEVELS[1:] if rows and whole else LEVELS


def record_shares(rows: list[dict]) -> np.ndarray:
    """Each window's share of its record's probability: its ``weight`` over the record's total weight (a
    record-level model's attention), or 1 / windows (the plain mean) for rows without weights."""
    windows_of: dict[tuple, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        windows_of[(r["seed"], r["subject"], r["record"])].append(i)
    shares = np.empty(len(rows))
    for key, positions in windows_of.items():
        weights = np.array([rows[i].get("weight", 1.0) for i in positions], dtype=float)
        if weights.sum() <= 0:
            raise DataError(f"record {key[2]} (seed {key[0]}): its windows' weights are all 0: rerun that fold")
        shares[positions] = weights / weights.sum()
    return shares


def pool(rows: list[dict], level: str) -> list[tuple[str, np.ndarray, str]]:
    """(true label, probabilities, subject) per unit of ``level``."""
    if level == "window":
        return [(r["label"], r["probabilities"], r["subject"]) for r in rows]
    by_record: dict[tuple, list] = defaultdict(list)
    for r, share in zip(rows, record_shares(rows)):
        by_record[(r["seed"], r["subject"], r["record"], r["label"])].append(share * r["probabilities"])
    records = {key: np.sum(p, axis=0) for key, p in by_record.items()}
    if level == "record":
        return [(key[3], p, key[1]) for key, p in records.items()]
    if level != "subject":
        raise ValueError(f"unknown level {level!r}; levels: {LEVELS}")
    by_subject: dict[tuple, list] = defaultdict(list)
    for (seed, subject, _, label), p in records.items():
        by_subject[(seed, subject, label)].append(p)
    return [(key[2], np.mean(p, axis=0), key[1]) for key, p in by_subject.items()]


def confusion_matrix(units: list[tuple], classes: list[str]) -> np.ndarray:
    """Integer counts, rows the true class, columns the predicted one (the most probable)."""
    labels, probabilities = _encoded(units, classes)
    return _counts(labels, probabilities.argmax(axis=1), len(classes))


def _encoded(units: list[tuple], classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    labels = np.array([classes.index(u[0]) for u in units], dtype=np.int64)
    return labels, np.array([u[1] for u in units], dtype=np.float64).reshape(len(units), len(classes))


def _counts(labels: np.ndarray, predicted: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(labels * k + predicted, minlength=k * k).reshape(k, k)


def scores(cm: np.ndarray, classes: list[str]) -> dict[str, float]:
    total = cm.sum()
    out = {"acc": float(np.trace(cm) / total) if total else math.nan, "n": int(total)}
    out.update(metrics_from_confusion(torch.as_tensor(cm), classes))
    return out


def auroc_macro(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """One-vs-rest AUROC (Mann-Whitney, ties counted half) averaged over the classes with positives and
    negatives; NaN with fewer than two classes present."""
    aucs = []
    for k in range(probabilities.shape[1]):
        positive = labels == k
        n_pos, n_neg = int(positive.sum()), int((~positive).sum())
        if n_pos and n_neg:
            ranks = stats.rankdata(probabilities[:, k])
            aucs.append((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return float(np.mean(aucs)) if len(aucs) >= 2 else math.nan


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int = 15) -> float:
    """L1 ECE with equal-width confidence bins (as torchmetrics' MulticlassCalibrationError)."""
    if len(labels) == 0:
        return math.nan
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return float(total)


def level_figures(units: list[tuple], classes: list[str]) -> dict:
    """Everything the report says about one level of one seed: confusion matrix, scores, pooled macro AUROC and
    ECE, and 95 % intervals -- subject-clustered bootstrap for accuracy and balanced accuracy, exact binomial for
    the subject-level accuracy (k of N subjects)."""
    labels, probabilities = _encoded(units, classes)
    subjects = [u[2] for u in units]
    predicted = probabilities.argmax(axis=1)
    k = len(classes)
    cm = _counts(labels, predicted, k)
    figures = {"confusion": cm.tolist(), **scores(cm, classes)}
    figures["auroc_macro"] = auroc_macro(labels, probabilities)
    figures["ece"] = expected_calibration_error(labels, probabilities)

    def resampled(positions: np.ndarray) -> np.ndarray:
        return _counts(labels[positions], predicted[positions], k)

    intervals = {
        "acc": subject_bootstrap(subjects, lambda pos: float(np.mean(labels[pos] == predicted[pos]))),
        "bal_acc": subject_bootstrap(subjects, lambda pos: _balanced_accuracy(resampled(pos))),
    }
    if len(set(subjects)) == len(units):  # one unit per subject: k correct of N is binomial
        intervals["acc"] = clopper_pearson(int(np.trace(cm)), int(cm.sum()))
        if not bootstrap_covers(int(np.trace(cm)), int(cm.sum())):
            intervals["bal_acc"] = (math.nan, math.nan)
    figures["intervals"] = {name: list(bounds) for name, bounds in intervals.items()}
    return figures


# A percentile bootstrap of one right-or-wrong vote per subject collapses to a point when all (or none) are right and
# undercovers near there: subject-level balanced accuracy gets its bootstrap interval only with at least this many
# subjects right and this many wrong (N2001's 20-22 of 22: none; the Algiers set's ~190 of 238: one)
MIN_SUBJECTS_EACH_WAY = 10


def bootstrap_covers(correct: float, n: int) -> bool:
    return min(correct, n - correct) >= MIN_SUBJECTS_EACH_WAY


def seed_mean_intervals(units: dict[str, list[tuple]], classes: list[str], per_seed: dict) -> dict:
    """95 % intervals of the mean over seeds of accuracy and balanced accuracy, resampling whole subjects (each
    resample scores every seed on the same drawn subjects, then averages the seeds): the uncertainty from which
    subjects were tested, which a t interval over seeds alone leaves out (it is zero for a deterministic model).
    Subject level (one vote per subject and seed): the exact binomial envelope of the seeds' mean count."""
    k = len(classes)
    seed_of, labels, predicted, subjects = [], [], [], []
    for s, seed_units in enumerate(units.values()):
        for label, probabilities, subject in seed_units:
            seed_of.append(s)
            labels.append(classes.index(label))
            predicted.append(int(np.argmax(probabilities)))
            subjects.append(subject)
    seed_of, labels, predicted = np.array(seed_of), np.array(labels), np.array(predicted)
    n_seeds = len(units)
    one_per_subject = all(len(set(u[2] for u in seed_units)) == len(seed_units) for seed_units in units.values())

    def per_seed_mean(score):
        def statistic(positions: np.ndarray) -> float:
            values = [score(positions[seed_of[positions] == s]) for s in range(n_seeds)]
            return float(np.mean(values))

        return statistic

    def accuracy(positions: np.ndarray) -> float:
        return float(np.mean(labels[positions] == predicted[positions]))

    def balanced(positions: np.ndarray) -> float:
        return _balanced_accuracy(_counts(labels[positions], predicted[positions], k))

    if one_per_subject:
        correct = np.mean([np.trace(np.array(f["confusion"])) for f in per_seed.values()])
        n = len(next(iter(units.values())))
        low = clopper_pearson(int(math.floor(correct)), n)[0]
        high = clopper_pearson(int(math.ceil(correct)), n)[1]
        covered = bootstrap_covers(correct, n)
        return {
            "acc": (low, high),
            "bal_acc": subject_bootstrap(subjects, per_seed_mean(balanced)) if covered else (math.nan, math.nan),
        }
    return {
        "acc": subject_bootstrap(subjects, per_seed_mean(accuracy)),
        "bal_acc": subject_bootstrap(subjects, per_seed_mean(balanced)),
    }


def _balanced_accuracy(cm: np.ndarray) -> float:
    support = cm.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(cm)[present] / support[present])) if present.any() else math.nan


def mean_std(values: list[float]) -> dict[str, float]:
    v = np.array([x for x in values if not math.isnan(x)], dtype=float)
    if len(v) == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": int(len(v))}


def aggregate(folds: list[dict], classes: list[str]) -> dict:
    """``folds``: one dict per finished fold run with ``fold``, ``seed`` and ``rows`` (its predictions)."""
    seeds = sorted({f["seed"] for f in folds}, key=str)
    levels = levels_of([r for f in folds for r in f["rows"]])
    per_fold = []
    for f in sorted(folds, key=lambda f: (str(f["seed"]), f["fold"])):
        window = scores(confusion_matrix(pool(f["rows"], levels[0]), classes), classes)
        per_fold.append(
            {
                "fold": f["fold"],
                "seed": f["seed"],
                "test_subjects": sorted({r["subject"] for r in f["rows"]}),
                **{k: window[k] for k in ("n", *HEADLINE)},
            }
        )
    pooled: dict[str, dict] = {}
    for level in levels:
        units = {str(seed): pool([r for f in folds if f["seed"] == seed for r in f["rows"]], level) for seed in seeds}
        per_seed = {seed: level_figures(seed_units, classes) for seed, seed_units in units.items()}
        keys = [k for k in next(iter(per_seed.values())) if k not in ("confusion", "n", "intervals")]
        across = {k: seed_summary([s[k] for s in per_seed.values()]) for k in keys}
        if len(seeds) > 1:
            for key, bounds in seed_mean_intervals(units, classes, per_seed).items():
                across[key]["interval"] = list(bounds)
        pooled[level] = {"per_seed": per_seed, "across_seeds": across}
    # over the folds of each seed: a spread of folds, never mixed with the spread of seeds
    over_folds = {
        str(seed): {k: mean_std([f[k] for f in per_fold if f["seed"] == seed]) for k in HEADLINE} for seed in seeds
    }
    weighted = any("weight" in r for f in folds for r in f["rows"])
    return {
        "classes": classes,
        "seeds": seeds,
        # how a record's probability comes from its windows': their mean, or a record-level model's weights
        "record_pooling": "weighted (the weight column)" if weighted else "mean",
        "n_folds": len({f["fold"] for f in folds}),
        "levels": list(levels),
        # per fold: figures at the finest level the predictions have (window, or record for whole-record rows)
        "per_fold_level": levels[0],
        "per_fold": per_fold,
        "over_folds_per_seed": over_folds,
        "pooled": pooled,
    }
