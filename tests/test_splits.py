import pytest

from emg_lightning.data.splits import (
    Fold,
    assert_no_leakage,
    leave_one_subject_out,
    make_fold,
    stratified_validation_subjects,
)
from emg_lightning.errors import ConfigError

LABELS = {**{f"A{i:02d}": "als" for i in range(1, 8)}, **{f"C{i:02d}": "normal" for i in range(1, 10)},
          **{f"M{i:02d}": "myopathy" for i in range(2, 8)}}


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
    val = stratified_validation_subjects(["A1", "C1", "C2", "C3"], labels, per_class=5, seed=0)
    assert "A1" not in val  # the only ALS training subject stays in training
    assert len([s for s in val if labels[s] == "normal"]) == 2


def test_fold_out_of_range_names_the_setting():
    with pytest.raises(ConfigError, match=r"data.fold=22 is out of range: split=loso has 22 folds \(0..21\)"):
        make_fold(LABELS, 22)
    with pytest.raises(ConfigError, match="data.fold=-1"):
        make_fold(LABELS, -1)


def test_leakage_guard_refuses_shared_subjects():
    with pytest.raises(ConfigError, match=r"\['C01'\] are in both train and test"):
        assert_no_leakage(Fold(0, ("C01", "A01"), ("M02",), ("C01",)))
    with pytest.raises(ConfigError, match="both val and test"):
        assert_no_leakage(Fold(0, ("A01",), ("M02",), ("M02",)))


def test_unknown_strategy_is_refused():
    with pytest.raises(ConfigError, match="split.name='kfold' is unknown"):
        make_fold(LABELS, 0, strategy="kfold")
