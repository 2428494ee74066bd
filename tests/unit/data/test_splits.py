import numpy as np
import pytest

from emg_lightning.data.splits import (
    Fold,
    assert_no_leakage,
    group_kfold,
    inner_fold_draws,
    leave_one_subject_out,
    make_fold,
    random_windows,
    stratified_validation_subjects,
)
from emg_lightning.runtime.errors import ConfigError

LABELS = {
    **{f"A{i:02d}": "als" for i in range(1, 8)},
    **{f"C{i:02d}": "normal" for i in range(1, 10)},
    **{f"M{i:02d}": "myopathy" for i in range(2, 8)},
}


def test_every_subject_is_held_out_exactly_once():
    groups = leave_one_subject_out(list(LABELS))
    held_out = [s for g in groups for s in g]
    assert sorted(held_out) == sorted(LABELS) and len(held_out) == len(set(held_out)) == 22


@pytest.mark.parametrize("fold", range(22))
def test_test_subject_is_never_in_train_or_validation(fold):
    f = make_fold(LABELS, fold, val_subjects_per_class=1, seed=0)
    assert len(f.test) == 1
    assert f.test[0] not in f.train and f.test[0] not in f.val
    assert not set(f.train) & set(f.val)
    assert set(f.train) | set(f.val) | set(f.test) == set(LABELS)


def test_validation_subjects_are_stratified_by_class():
    f = make_fold(LABELS, 0, val_subjects_per_class=2, seed=3)
    classes = [LABELS[s] for s in f.val]
    assert sorted(classes) == ["als"] * 2 + ["myopathy"] * 2 + ["normal"] * 2


def test_validation_choice_is_reproducible_and_seeded():
    a = make_fold(LABELS, 5, seed=1)
    assert a == make_fold(LABELS, 5, seed=1)
    draws = {make_fold(LABELS, 5, seed=s).val for s in range(10)}
    assert len(draws) > 1


def test_a_class_always_keeps_a_training_subject():
    labels = {"A1": "als", "A2": "als", "C1": "normal", "C2": "normal", "C3": "normal"}
    val = stratified_validation_subjects(["A1", "C1", "C2", "C3"], labels, per_class=2, seed=0)
    assert "A1" not in val  # the only ALS training subject stays in training
    assert len([s for s in val if labels[s] == "normal"]) == 2


def test_asking_more_validation_subjects_than_a_class_can_give_is_refused():
    labels = {"A1": "als", "A2": "als", "C1": "normal", "C2": "normal", "C3": "normal"}
    with pytest.raises(
        ConfigError,
        match="val_subjects_per_class=5 is more than class normal can give: it has 3 "
        r"subjects outside the test set .* \(at most 2\)",
    ):
        stratified_validation_subjects(["A1", "C1", "C2", "C3"], labels, per_class=5, seed=0)


def test_fold_out_of_range_names_the_setting():
    with pytest.raises(ConfigError, match=r"data.fold=22 is out of range: split=loso has 22 folds \(0..21\)"):
        make_fold(LABELS, 22)
    with pytest.raises(ConfigError, match="data.fold=-1"):
        make_fold(LABELS, -1)


def test_leakage_guard_refuses_shared_subjects():
    with pytest.raises(ConfigError, match=r"\[.C01.\] are in both train and test; only the leaky splits"):
        assert_no_leakage(Fold(0, ("C01", "A01"), ("M02",), ("C01",)))
    with pytest.raises(ConfigError, match=r"\[.A01.\] are in both train and val"):
        assert_no_leakage(Fold(0, ("A01", "C01"), ("A01",), ("M02",)))
    with pytest.raises(ConfigError, match="both val and test"):
        assert_no_leakage(Fold(0, ("A01",), ("M02",), ("M02",)))
    assert_no_leakage(Fold(0, ("A01",), ("C01",), ("M02",)))  # disjoint: accepted


def test_unknown_strategy_is_refused():
    with pytest.raises(
        ConfigError, match="split.name=.kfold. is unknown; available: loso, group_kfold, fixed, random_windows"
    ):
        make_fold(LABELS, 0, strategy="kfold")


def test_group_kfold_holds_every_subject_out_once_stratified():
    groups = group_kfold(LABELS, 3, seed=0)
    held = [s for g in groups for s in g]
    assert sorted(held) == sorted(LABELS) and len(held) == len(set(held))
    assert sorted(len(g) for g in groups) == [7, 7, 8]
    for g in groups:  # 7 ALS, 9 normal, 6 myopathy over 3 folds: 2-3 of each class per fold
        counts = {c: sum(LABELS[s] == c for s in g) for c in ("als", "normal", "myopathy")}
        assert 2 <= counts["als"] <= 3 and counts["normal"] == 3 and counts["myopathy"] == 2
    assert group_kfold(LABELS, 3, seed=0) == groups and group_kfold(LABELS, 3, seed=1) != groups
    f = make_fold(LABELS, 2, strategy="group_kfold", k=3)
    assert set(f.test) == set(groups[2]) and not set(f.train) & set(f.test)
    with pytest.raises(ConfigError, match="split.k=1 must be between 2 and the number of subjects"):
        group_kfold(LABELS, 1, seed=0)


def test_fixed_split_uses_the_given_subjects():
    f = make_fold(LABELS, 0, strategy="fixed", test_subjects=["A01", "C01"], val_subjects=["M02"])
    assert f.test == ("A01", "C01") and f.val == ("M02",) and len(f.train) == 19
    with pytest.raises(ConfigError, match="data.fold=1 is out of range: split=fixed has 1 folds"):
        make_fold(LABELS, 1, strategy="fixed", test_subjects=["A01"])
    with pytest.raises(ConfigError, match=r"unknown: \['Z99'\]"):
        make_fold(LABELS, 0, strategy="fixed", test_subjects=["Z99"])
    with pytest.raises(ConfigError, match="val_subjects .*A01.* also test subjects"):
        make_fold(LABELS, 0, strategy="fixed", test_subjects=["A01"], val_subjects=["A01"])


def test_random_windows_reproduces_the_alsnet_paper_counts():
    train, val, test = random_windows(3322, 0.2, 0.2, seed=0)
    assert (len(train), len(val), len(test)) == (2125, 532, 665)  # the paper's 2125 / 532 / 665
    assert len(np.unique(np.concatenate([train, val, test]))) == 3322
    fold = make_fold(LABELS, 0, strategy="random_windows")
    assert fold.leaky and fold.test == fold.train  # every subject on both sides: leaky by construction


def test_inner_fold_draws_are_the_seeded_group_kfolds_and_one_draw_when_every_subject_is_a_fold():
    rows = ["A01", "A01", "C01", "M02", "A02", "C02", "M03", "C01"]  # row -> subject, as in a window table
    labels = {s: LABELS[s] for s in sorted(set(rows))}
    draws = inner_fold_draws(rows, labels, 3, 2, seed=1)
    assert draws.shape == (2, len(rows))
    for repeat, draw in enumerate(draws):  # draw r is group_kfold with seed 1000 * seed + r, row by row
        groups = group_kfold(labels, 3, 1000 + repeat)
        assert [next(i for i, g in enumerate(groups) if s in g) for s in rows] == draw.tolist()
    assert draws[0][0] == draws[0][1] and draws[0][2] == draws[0][7]  # a subject's rows share a fold
    assert inner_fold_draws(rows, labels, 6, 3, seed=0).shape == (1, len(rows))  # 6 subjects, 6 folds: one partition


def test_random_records_keeps_records_whole_and_is_leaky():
    from emg_lightning.data.splits import random_windows

    fold = make_fold(LABELS, 0, strategy="random_records")
    assert fold.leaky and set(fold.train) == set(fold.test) == set(LABELS)
    train, val, test = random_windows(10, 0.2, 0.2, seed=0)  # the record draw: 2 test, then the last 20 % of 8 as val
    assert len(test) == 2 and len(val) == 2 and len(train) == 6
    assert sorted([*train, *val, *test]) == list(range(10))


@pytest.mark.parametrize(
    "name, settings, message",
    [
        ("random_records", {"k": 10}, r"split=random_records has no settings \['k'\]"),
        ("random_windows", {"val_subjects_per_class": 1}, "split=random_windows has no settings"),
        ("loso", {"test_fraction": 0.2}, r"split=loso has no settings \['test_fraction'\]"),
        ("kfold", {}, "split.name='kfold' is unknown"),
    ],
)
def test_settings_a_split_does_not_take_are_refused(name, settings, message):
    from emg_lightning.data.splits import check_split_settings

    with pytest.raises(ConfigError, match=message):
        check_split_settings(name, settings)


def test_group_kfold_deals_each_stratum_when_given_strata():
    from emg_lightning.data.splits import fold_test_subjects

    # two clinics of unequal size: a:* has 4 per class, b:* 12 per class; 4 folds
    labels = {f"{part}:{c}{i}": c for part, n in (("a", 4), ("b", 12)) for c in ("n", "m") for i in range(n)}
    strata = {s: f"{s.split(':')[0]}/{label}" for s, label in labels.items()}
    groups = fold_test_subjects(labels, "group_kfold", k=4, seed=0, strata=strata)
    for group in groups:  # every fold: one of clinic a's 4 per class, three of clinic b's 12 per class
        assert sorted(sum(1 for s in group if strata[s] == stratum) for stratum in set(strata.values())) == [1, 1, 3, 3]
    assert sorted(s for g in groups for s in g) == sorted(labels)


# -- hand cases that tell definitions apart (each kills a plausible slip the tests above let through) ----------------


def test_group_kfold_deals_the_classes_in_turn_continuing_where_the_last_class_stopped():
    # classes in sorted order (a, then b), each dealt to folds 0, 1, 2, ... from where the previous stopped:
    # a's two subjects go to folds 0 and 1, b's two to folds 2 and 0 -- whatever the shuffle within a class
    labels = {"a1": "a", "a2": "a", "b1": "b", "b2": "b"}
    for seed in range(5):
        groups = group_kfold(labels, 3, seed)
        assert [sorted({labels[s] for s in g}) for g in groups] == [["a", "b"], ["a"], ["b"]]
    assert len(group_kfold(labels, 2, 0)) == 2  # the smallest k
    with pytest.raises(ConfigError, match=r"split.k=5 must be between 2 and the number of subjects \(4\)"):
        group_kfold(labels, 5, 0)


def test_a_class_of_two_gives_one_validation_subject_and_refuses_two():
    labels = {"a1": "a", "a2": "a", "b1": "b", "b2": "b", "b3": "b"}
    assert len(stratified_validation_subjects(list(labels), labels, 1, 0)) == 2
    with pytest.raises(ConfigError, match="val_subjects_per_class=2 is more than class a can give: it has 2 "):
        stratified_validation_subjects(list(labels), labels, 2, 0)


def test_validation_subjects_are_drawn_without_replacement():
    labels = {f"s{i}": "a" for i in range(10)}
    for seed in range(20):  # 9 draws of 10 with replacement repeat one almost surely
        chosen = stratified_validation_subjects(list(labels), labels, 9, seed)
        assert len(chosen) == len(set(chosen)) == 9


def test_no_validation_subjects_is_a_setting_and_a_negative_number_is_refused():
    fold = make_fold(LABELS, 3, "loso", val_subjects_per_class=0, seed=0, k=5)
    assert fold.val == () and len(fold.train) == len(LABELS) - 1 and fold.index == 3
    with pytest.raises(ConfigError, match="split.val_subjects_per_class must be >= 0, got -1"):
        make_fold(LABELS, 0, "loso", val_subjects_per_class=-1, seed=0, k=5)


def test_the_final_model_split_trains_on_everyone_but_its_validation_subjects():
    fold = make_fold(LABELS, 0, "all", val_subjects_per_class=1, seed=0, k=5)
    assert fold.test == () and not fold.leaky and len(fold.val) == 3  # one per class
    assert sorted(fold.train + fold.val) == sorted(LABELS)
    with pytest.raises(ConfigError, match="data.fold=1 is out of range: split=all has 1 folds"):
        make_fold(LABELS, 1, "all", val_subjects_per_class=1, seed=0, k=5)


def test_leaky_folds_keep_their_index_and_every_subject_in_every_part():
    fold = make_fold(LABELS, 0, "random_windows", val_subjects_per_class=1, seed=0, k=5)
    assert fold == Fold(0, tuple(sorted(LABELS)), tuple(sorted(LABELS)), tuple(sorted(LABELS)), leaky=True)


def test_a_folds_test_subjects_come_from_the_strata_when_given():
    labels = {f"{part}:{c}{i}": c for part, n in (("a", 4), ("b", 12)) for c in ("n", "m") for i in range(n)}
    strata = {s: f"{s.split(':')[0]}/{label}" for s, label in labels.items()}
    from emg_lightning.data.splits import fold_test_subjects

    expected = fold_test_subjects(labels, "group_kfold", 4, 0, (), strata)
    by_class = fold_test_subjects(labels, "group_kfold", 4, 0, (), None)
    assert expected != by_class  # the case tells the two apart
    for i in range(4):
        fold = make_fold(labels, i, "group_kfold", val_subjects_per_class=1, seed=0, k=4, strata=strata)
        assert fold.test == expected[i] and fold.index == i


def test_given_validation_subjects_belong_to_the_fixed_split_only():
    from emg_lightning.data.splits import check_split_settings

    for name in ("loso", "group_kfold", "all"):  # they would be ignored there: refused instead
        with pytest.raises(ConfigError, match=rf"split={name} has no settings \['test_subjects', 'val_subjects'\]"):
            check_split_settings(name, {"test_subjects": ["A01"], "val_subjects": ["C01"]})
    with pytest.raises(ConfigError, match=r"split=loso has no settings \['k'\]"):
        check_split_settings("loso", {"k": 5})
    check_split_settings("fixed", {"test_subjects": ["A01"], "val_subjects": ["C01"], "seed": 0})
    message = "split.name='kfold' is unknown; available: loso, group_kfold, fixed, random_windows, random_records, all"
    with pytest.raises(ConfigError, match=message):
        check_split_settings("kfold", {})


def test_the_leakage_message_names_the_leaky_splits():
    with pytest.raises(ConfigError, match=r"only the leaky splits \(random_windows, random_records\) may share"):
        assert_no_leakage(Fold(0, ("A01",), ("A01",), ()))


@pytest.mark.parametrize(
    "test_fraction, val_fraction", [(0.0, 0.2), (1.0, 0.2), (1.5, 0.2), (0.2, 1.0), (0.2, 1.5), (0.2, -0.1)]
)
def test_random_split_fractions_outside_their_range_are_refused(test_fraction, val_fraction):
    message = rf"split.test_fraction must be in \(0, 1\) and split.val_fraction in \[0, 1\), got {test_fraction}"
    with pytest.raises(ConfigError, match=message):
        random_windows(10, test_fraction, val_fraction, 0)


def test_random_splits_repeat_under_their_seed_and_allow_no_validation():
    first = random_windows(50, 0.2, 0.2, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(first, random_windows(50, 0.2, 0.2, seed=3)))
    assert not np.array_equal(first[2], random_windows(50, 0.2, 0.2, seed=4)[2])
    train, val, test = random_windows(50, 0.2, 0.0, seed=3)
    assert len(val) == 0 and len(train) == 40 and len(test) == 10
