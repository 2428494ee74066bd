"""Subject-level splits as pure functions over {subject: label}. No torch, no Lightning.

Only whole subjects are held out: any split that shares a subject between training and test measures the subject,
not the disease (EMGLab N2001's controls are also 30 years younger than its ALS patients).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from emg_lightning.errors import ConfigError


@dataclass(frozen=True)
class Fold:
    index: int
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]


def leave_one_subject_out(subjects: Sequence[str]) -> list[tuple[str, ...]]:
    """Test groups: one subject per fold, in sorted order (fold k holds out the k-th subject)."""
    return [(s,) for s in sorted(set(subjects))]


def stratified_validation_subjects(candidates: Sequence[str], labels: Mapping[str, str], per_class: int,
                                   seed: int) -> tuple[str, ...]:
    """Pick ``per_class`` validation subjects of every class among ``candidates`` (the training subjects).

    A class keeps at least one training subject: with n subjects it gives at most n - 1 to validation.
    """
    rng = np.random.default_rng(seed)
    chosen: list[str] = []
    for label in sorted({labels[s] for s in candidates}):
        pool = sorted(s for s in candidates if labels[s] == label)
        take = min(per_class, len(pool) - 1)
        if take > 0:
            chosen += [pool[i] for i in sorted(rng.choice(len(pool), size=take, replace=False))]
    return tuple(sorted(chosen))


def assert_no_leakage(fold: Fold) -> None:
    """Refuse a fold in which any subject is in more than one of train / validation / test."""
    parts = {"train": set(fold.train), "val": set(fold.val), "test": set(fold.test)}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        shared = parts[a] & parts[b]
        if shared:
            raise ConfigError(f"fold {fold.index}: subjects {sorted(shared)} are in both {a} and {b}")


def make_fold(labels: Mapping[str, str], fold: int, strategy: str = "loso", val_subjects_per_class: int = 1,
              seed: int = 0) -> Fold:
    """Train / validation / test subjects of fold ``fold`` under ``strategy``."""
    if strategy != "loso":
        raise ConfigError(f"split.name={strategy!r} is unknown; available: loso")
    if val_subjects_per_class < 0:
        raise ConfigError(f"split.val_subjects_per_class must be >= 0, got {val_subjects_per_class}")
    test_groups = leave_one_subject_out(list(labels))
    if not 0 <= fold < len(test_groups):
        raise ConfigError(f"data.fold={fold} is out of range: split={strategy} has {len(test_groups)} folds "
                          f"(0..{len(test_groups) - 1}), one per subject")
    test = test_groups[fold]
    rest = [s for s in sorted(labels) if s not in test]
    # seed + fold: every fold draws its own validation subjects, reproducibly
    val = stratified_validation_subjects(rest, labels, val_subjects_per_class, seed + fold)
    train = tuple(s for s in rest if s not in val)
    result = Fold(fold, train, val, test)
    assert_no_leakage(result)
    return result
