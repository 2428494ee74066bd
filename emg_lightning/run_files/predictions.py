"""``predictions.csv``: one row per test window -- fold, seed, subject, record, window, true label, predicted class,
one probability per class (``p_<class>``) and, for a record-level model, the window's ``weight`` in its record.
A model whose features describe whole records (``data.features=muap``) writes one row per record instead, its
``window`` column ``-1`` (``WHOLE_RECORD``): such a file has no window level.
The one writer (training, emg-predict / emg-eval and emg-ensemble all format their rows here) and the one reader
(every report and comparison), side by side."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emg_lightning.runtime.errors import DataError
from emg_lightning.runtime.files import atomic_write_text

WHOLE_RECORD = -1  # the window column of a row that predicts a whole record (every reader of predictions.csv)


def whole_record_predictions(predictions: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A classifier's per-window test predictions (``probabilities``, ``y``, ``subject``, ``record``, ``window``)
    made one per record: the mean of its windows' probabilities, ``window`` = ``WHOLE_RECORD``."""
    records, position = torch.unique(predictions["record"], return_inverse=True)
    counts = torch.zeros(len(records), dtype=torch.float64).index_add_(
        0, position, torch.ones(len(position), dtype=torch.float64)
    )
    sums = torch.zeros(len(records), predictions["probabilities"].shape[1], dtype=torch.float64)
    sums.index_add_(0, position, predictions["probabilities"].double())
    first = torch.full((len(records),), len(position), dtype=torch.int64).scatter_reduce(
        0, position, torch.arange(len(position)), reduce="amin"
    )
    return {
        "probabilities": (sums / counts[:, None]).float(),
        "y": predictions["y"][first],
        "subject": predictions["subject"][first],
        "record": records,
        "window": torch.full((len(records),), WHOLE_RECORD, dtype=torch.int64),
    }


def prediction_lines(rows: Iterable[dict[str, Any]], classes: list[str]) -> list[str]:
    """The lines of emg-cv's predictions.csv (the one writer of that format): one row per test window with who it
    is, its true and predicted class and every class probability; a record-level model's rows also carry the
    window's ``weight`` in its record's probability. ``rows``: dicts with fold, seed, subject, record, window,
    label, probabilities and optionally weight (all rows or none)."""
    rows = list(rows)
    weighted = bool(rows) and "weight" in rows[0]
    header = ["fold", "seed", "subject", "record", "window", "label", "predicted", *(f"p_{c}" for c in classes)]
    lines = [",".join(header + (["weight"] if weighted else []))]
    for row in rows:
        p = row["probabilities"]
        seed = row["seed"]
        fields = [
            str(row["fold"]),
            "" if seed is None else str(seed),
            row["subject"],
            row["record"],
            str(row["window"]),
        ]
        fields += [row["label"], classes[int(np.argmax(p))], *(f"{v:.6f}" for v in p)]
        if weighted:
            fields.append(f"{row['weight']:.6g}")
        lines.append(",".join(fields))
    return lines


def write_predictions(
    path: Path,
    predictions: dict,
    classes: list[str],
    subjects: list[str],
    records: list[str],
    fold: int,
    seed: int | None,
) -> None:
    """A fold's test predictions (the classifier's ``test_predictions``: index tensors into ``classes``,
    ``subjects`` and ``records``) as predictions.csv."""
    probabilities = predictions["probabilities"].numpy().astype(np.float64)
    weights = predictions["weight"].numpy().astype(np.float64) if "weight" in predictions else None
    rows = []
    for i, p in enumerate(probabilities):
        row = {
            "fold": fold,
            "seed": seed,
            "subject": subjects[int(predictions["subject"][i])],
            "record": records[int(predictions["record"][i])],
            "window": int(predictions["window"][i]),
            "label": classes[int(predictions["y"][i])],
            "probabilities": p,
        }
        if weights is not None:
            row["weight"] = weights[i]
        rows.append(row)
    atomic_write_text(path, "\n".join(prediction_lines(rows, classes)) + "\n")


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
        try:
            row["window"] = int(row["window"])
        except ValueError:
            raise DataError(f"{path}, line {number}: window={row['window']!r} is not a whole number") from None
        if row["window"] < WHOLE_RECORD:
            raise DataError(f"{path}, line {number}: window={row['window']} (a window index, or -1 for a whole record)")
        if "weight" in row:
            try:
                row["weight"] = float(row["weight"])
            except ValueError:
                raise DataError(f"{path}, line {number}: weight={row['weight']!r} is not a number") from None
            if not math.isfinite(row["weight"]) or row["weight"] < 0:
                raise DataError(f"{path}, line {number}: weight={row['weight']} must be a finite number >= 0")
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: no test windows: a fold must test at least one window; rerun that fold")
    return classes, rows
