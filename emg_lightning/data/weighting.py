"""How much each training window counts.

``window`` (the default): every window alike, so a person with four recordings weighs four times a person with one
(the Algiers set: about 4 recordings per healthy person, about 1 per patient). ``subject``: every training subject
alike, each window weighing 1 / (its subject's windows); the closed-form models weigh their loss so, networks draw
their training windows so (with replacement, as many per epoch as the training set holds). Class balance is on top
of this where a model has it (the linear model's loss balances the classes' weighted totals)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import RandomSampler, Sampler, WeightedRandomSampler

WEIGHT_BY = ("window", "subject")


def check_weight_by(weight_by: str) -> None:
    """ValueError naming the setting when it is not one of WEIGHT_BY."""
    if weight_by not in WEIGHT_BY:
        raise ValueError(f"data.weight_by={weight_by!r} is unknown; use one of {', '.join(WEIGHT_BY)}")


def training_weights(subjects: np.ndarray, weight_by: str) -> np.ndarray:
    """Each row's weight (mean 1 over the rows): 1 for ``window``; for ``subject``, rows / (subjects * the rows of
    the row's subject), so that every subject's rows sum to the same total."""
    check_weight_by(weight_by)
    subjects = np.asarray(subjects)
    if weight_by == "window" or len(subjects) == 0:
        return np.ones(len(subjects))
    _, position, counts = np.unique(subjects, return_inverse=True, return_counts=True)
    return len(subjects) / (len(counts) * counts[position.ravel()])


def training_sampler(subjects: np.ndarray, weight_by: str) -> Sampler:
    """An epoch's order of the training rows: each once in a random order (``window``), or as many draws with
    replacement, each row drawn with probability proportional to its weight, so each subject is drawn equally
    often (``subject``). Drawn from torch's generator: seeded runs repeat."""
    if weight_by == "window":
        return RandomSampler(range(len(subjects)))
    weights = torch.from_numpy(training_weights(subjects, weight_by))
    return WeightedRandomSampler(weights, num_samples=len(subjects), replacement=True)
