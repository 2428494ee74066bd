"""Splits as pure functions over {subject: label} (or window counts). No torch, no Lightning.

Subject-level strategies hold out whole subjects: any split that shares a subject between training and test
measures the subject, not the disease (EMGLab N2001's controls are also 30 years younger than its ALS patients).

- ``loso``: one subject per fold.
- ``group_kfold``: subjects stratified by class into k folds.
- ``fixed``: explicit test (and optionally validation) subject lists; one fold.
- ``random_records``: a random record-level split (the published protocol on the Algiers set): whole recordings,
  but recordings of one person on both sides. Leaky, named so, for the same reason.
- ``random_windows``: the ALSNet paper's protocol -- a random window-level split in which windows of one recording
  fall on both sides. Leaky by construction; kept under this explicit name so that its figures can be reproduced
  and compared with the subject-level ones, never mistaken for them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from emg_lightning.runtime.errors import ConfigError

# "all": one fold, no test subjects: the final model, trained on every subject (its accuracy is its CV's)
STRATEGIES = ("loso", "group_kfold", "fixed", "random_windows", "random_records", "all")
LEAKY_STRATEGIES = ("random_windows", "random_records")
# the settings each strategy takes (split.*, besides its name): any other would be silently ignored
SPLIT_SETTINGS = {
    "loso": ("val_subjects_per_class", "seed"),
    "group_kfold": ("val_subjects_per_class", "seed", "k"),
    "fixed": ("val_subjects_per_class", "seed", "test_subjects", "val_subjects"),
    "all": ("val_subjects_per_class", "seed"),
    **{name: ("seed", "test_fraction", "val_fraction") for name in LEAKY_STRATEGIES},
}


@dataclass(frozen=True)
class Fold:
    index: int
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    leaky: bool = False  # True only for the leaky strategies: subjects appear in several parts on purpose


def leave_one_subject_out(subjects: Sequence[str]) -> list[tuple[str, ...]]:
    """Test groups: one subject per fold, in sorted order (fold k holds out the k-th subject)."""
    return [(s,) for s in sorted(set(subjects))]


def group_kfold(labels: Mapping[str, str], k: int, seed: int) -> list[tuple[str, ...]]:
    """Test groups of a class-stratified subject k-fold: each class's subjects, shuffled, are dealt to the folds
    in turn, continuing where the previous class stopped so that fold sizes differ by at most one."""
    if not 2 <= k <= len(labels):
        raise ConfigError(f"split.k={k} must be between 2 and the number of subjects ({len(labels)})")
    rng = np.random.default_rng(seed)
    groups: list[list[str]] = [[] for _ in range(k)]
    position = 0
    for label in sorted(set(labels.values())):
        subjects = sorted(s for s, lab in labels.items() if lab == label)
        for i in rng.permutation(len(subjects)):
            groups[position % k].append(subjects[i])
            position += 1
    return [tuple(sorted(g)) for g in groups]


def inner_fold_draws(
    row_subjects: Sequence[str], labels: Mapping[str, str], k: int, repeats: int, seed: int
) -> np.ndarray:
    """Each row's inner fold in ``repeats`` draws of a class-stratified subject k-fold over the subjects of
    ``labels`` (draw r from seed ``1000 * seed + r``): shape (draws, rows). One draw when every subject is its own
    fold, since every draw would then be the same partition."""
    draws = []
    for repeat in range(repeats if k < len(labels) else 1):
        fold_of = {s: i for i, group in enumerate(group_kfold(labels, k, 1000 * seed + repeat)) for s in group}
        draws.append([fold_of[s] for s in row_subjects])
    return np.array(draws)


def stratified_validation_subjects(
    candidates: Sequence[str], labels: Mapping[str, str], per_class: int, seed: int
) -> tuple[str, ...]:
    """Pick ``per_class`` validation subjects of every class among ``candidates`` (the training subjects).

    A class keeps at least one training subject: a class with one candidate gives none, and asking a class of
    n >= 2 candidates for more than n - 1 is refused (it would train on almost nobody and validate on everyone).
    """
    rng = np.random.default_rng(seed)
    chosen: list[str] = []
    for label in sorted({labels[s] for s in candidates}):
        pool = sorted(s for s in candidates if labels[s] == label)
        if len(pool) >= 2 and per_class > len(pool) - 1:
            raise ConfigError(
                f"split.val_subjects_per_class={per_class} is more than class {label} can give: it has "
                f"{len(pool)} subjects outside the test set and keeps at least one for training (at most "
                f"{len(pool) - 1})"
            )
        take = min(per_class, len(pool) - 1)
        if take > 0:
            chosen += [pool[i] for i in sorted(rng.choice(len(pool), size=take, replace=False))]
    return tuple(sorted(chosen))


def check_split_settings(name: str, settings: Mapping[str, object]) -> None:
    """Refuse ``split.*`` settings the strategy does not take (they would be silently ignored)."""
    if name not in SPLIT_SETTINGS:
        raise ConfigError(f"split.name={name!r} is unknown; available: {', '.join(STRATEGIES)}")
    unknown = sorted(set(settings) - set(SPLIT_SETTINGS[name]))
    if unknown:
        raise ConfigError(f"split={name} has no settings {unknown}; known: {sorted(SPLIT_SETTINGS[name])}")


def random_windows(
    n_windows: int, test_fraction: float, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) positions among ``n_windows`` items as the ALSNet paper split its windows: a shuffled test
    fraction (scikit-learn's ``train_test_split`` rounds the test size up), then the last ``val_fraction`` of the
    remaining training items as validation (Keras ``validation_split``). ``random_records`` draws records the
    same way."""
    if not 0 < test_fraction < 1 or not 0 <= val_fraction < 1:
        raise ConfigError(
            f"split.test_fraction must be in (0, 1) and split.val_fraction in [0, 1), got "
            f"{test_fraction} and {val_fraction}"
        )
    order = np.random.default_rng(seed).permutation(n_windows)
    n_test = int(np.ceil(test_fraction * n_windows))
    test, rest = order[:n_test], order[n_test:]
    n_train = int(len(rest) * (1.0 - val_fraction))  # Keras: split_at = int(n * (1 - validation_split))
    train, val = rest[:n_train], rest[n_train:]
    return np.sort(train), np.sort(val), np.sort(test)


def assert_no_leakage(fold: Fold) -> None:
    """Refuse a fold in which any subject is in more than one of train / validation / test."""
    parts = {"train": set(fold.train), "val": set(fold.val), "test": set(fold.test)}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        shared = parts[a] & parts[b]
        if shared:
            raise ConfigError(
                f"fold {fold.index}: subjects {sorted(shared)} are in both {a} and {b}; only the leaky "
                f"splits ({', '.join(LEAKY_STRATEGIES)}) may share subjects, and they are reported as leaky"
            )


def fold_test_subjects(
    labels: Mapping[str, str],
    strategy: str,
    k: int,
    seed: int,
    test_subjects: Sequence[str] = (),
    strata: Mapping[str, str] | None = None,
) -> list[tuple[str, ...]]:
    """The test subjects of every fold of a subject-level strategy; ``group_kfold`` deals the subjects of each
    stratum in turn (``strata``: subject -> stratum, e.g. clinic and class of pooled data; default the class)."""
    if strategy == "loso":
        return leave_one_subject_out(list(labels))
    if strategy == "group_kfold":
        return group_kfold(strata or labels, k, seed)
    if strategy == "fixed":
        unknown = sorted(set(test_subjects) - set(labels))
        if not test_subjects or unknown:
            raise ConfigError(
                f"split.test_subjects must list known subjects (unknown: {unknown}); known: {sorted(labels)}"
            )
        return [tuple(sorted(test_subjects))]
    if strategy in LEAKY_STRATEGIES:
        return [tuple(sorted(labels))]
    if strategy == "all":
        return [()]
    raise ConfigError(f"split.name={strategy!r} is unknown; available: {', '.join(STRATEGIES)}")


def make_fold(
    labels: Mapping[str, str],
    fold: int,
    strategy: str = "loso",
    val_subjects_per_class: int = 1,
    seed: int = 0,
    k: int = 5,
    test_subjects: Sequence[str] = (),
    val_subjects: Sequence[str] = (),
    strata: Mapping[str, str] | None = None,
) -> Fold:
    """Train / validation / test subjects of fold ``fold`` under ``strategy`` (``strata``: see
    ``fold_test_subjects``; validation subjects are drawn per class either way)."""
    if val_subjects_per_class < 0:
        raise ConfigError(f"split.val_subjects_per_class must be >= 0, got {val_subjects_per_class}")
    groups = fold_test_subjects(labels, strategy, k, seed, test_subjects, strata)
    if not 0 <= fold < len(groups):
        raise ConfigError(
            f"data.fold={fold} is out of range: split={strategy} has {len(groups)} folds (0..{len(groups) - 1})"
        )
    if strategy in LEAKY_STRATEGIES:  # every subject is everywhere: the windows or records decide
        everyone = tuple(sorted(labels))
        return Fold(fold, everyone, everyone, everyone, leaky=True)
    test = groups[fold]
    rest = [s for s in sorted(labels) if s not in test]
    if val_subjects:  # given (split=fixed only: SPLIT_SETTINGS)
        val = tuple(sorted(val_subjects))
        unknown = sorted(set(val) - set(rest))
        if unknown:
            raise ConfigError(f"split.val_subjects {unknown} are unknown or also test subjects")
    else:  # seed + fold: every fold draws its own validation subjects, reproducibly
        val = stratified_validation_subjects(rest, labels, val_subjects_per_class, seed + fold)
    train = tuple(s for s in rest if s not in val)
    result = Fold(fold, train, val, test)
    assert_no_leakage(result)
    return result
