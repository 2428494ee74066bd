"""emg-cv end to end on tiny synthetic data: all folds, rerun skips, resume after a crash, a failing fold."""

from __future__ import annotations

import json

import pytest

from emg_lightning.config import search_candidates, search_space
from emg_lightning.cv.nested import best_values
from emg_lightning.cv.plan import check_trials, nested_jobs_count
from emg_lightning.runtime.errors import ConfigError, EMGLightningError


def pooled(cv_dir):
    summary = json.loads((cv_dir / "cv_summary.json").read_text())
    return summary["pooled"], summary["per_fold"]


@pytest.mark.parametrize("text", ["0", "-2", "two", "1.5", "[2]"])
def test_nonsense_nested_jobs_are_refused(text):
    with pytest.raises(ConfigError) as refused:
        nested_jobs_count(text, nested=True)
    assert str(refused.value) == f"nested_jobs={text} must be a whole number of outer folds at a time, 1 or more"


@pytest.mark.parametrize("text", ["0", "-1", "many", "2.5"])
def test_a_search_of_no_trial_is_refused_before_any_job(text):
    with pytest.raises(ConfigError) as refused:
        check_trials(["hparams_search=optuna", f"hydra.sweeper.n_trials={text}"])
    assert str(refused.value) == f"hydra.sweeper.n_trials={text} must be a whole number of search trials, 1 or more"
    check_trials(["hparams_search=optuna", "hydra.sweeper.n_trials=3"])  # a real search is fine


def test_nested_jobs_counts_outer_folds_and_needs_a_search():
    assert nested_jobs_count(None, nested=False) == 1 and nested_jobs_count("3", nested=True) == 3
    with pytest.raises(ConfigError) as refused:
        nested_jobs_count("2", nested=False)
    assert str(refused.value) == (
        "nested_jobs=2 runs the outer folds of a nested search side by side, but there is no hparams_search: for a "
        "plain sweep use launcher=local_parallel hydra.launcher.n_jobs=2"
    )


def test_an_inner_search_without_a_winner_says_whether_to_mend_a_setting_or_run_again(tmp_path):
    search_dir = tmp_path / "search" / "seed_0" / "fold_03"
    (search_dir / "trial_0").mkdir(parents=True)
    with pytest.raises(EMGLightningError, match="did not finish .*: run the same command again"):
        best_values(search_dir)  # interrupted: nothing failed
    (search_dir / "trial_1").mkdir()
    (search_dir / "trial_1" / "failed.json").write_text(json.dumps({"error": "the network diverged at epoch 3"}))
    with pytest.raises(EMGLightningError) as refused:
        best_values(search_dir)
    assert str(refused.value) == (
        f"the inner search in {search_dir} stopped: trial trial_1 failed (the network diverged at epoch 3); mend "
        f"that setting, then run emg-cv again"
    )
    (search_dir / "trial_1" / "failed.json").write_text('{"error": "the network')  # cut off mid-write
    with pytest.raises(EMGLightningError, match=r"trial trial_1 failed \(its failed.json is unreadable\); mend"):
        best_values(search_dir)
    results = search_dir / "optimization_results.yaml"
    for damaged in ("name: optuna\n", "best_params: 3\n", "- 1\n"):
        results.write_text(damaged)
        with pytest.raises(EMGLightningError) as refused:
            best_values(search_dir)
        assert str(refused.value).startswith(f"{results} is damaged (")
        assert str(refused.value).endswith("): delete it, and the same command runs that search again")
    results.write_text("name: optuna\nbest_params:\n  data.sample_rate: 4687.5\n")
    assert best_values(search_dir) == {"data.sample_rate": 4687.5}


@pytest.mark.parametrize(
    "text, values",
    [
        ("choice(23437.5, 4687.5)", [23437.5, 4687.5]),
        ("interval(0.0, 0.3)", [0.0, 0.3]),
        ("tag(log, interval(1e-4, 1e-2))", [1e-4, 1e-2]),
        ("range(1, 7, 2)", [1, 3, 5]),
        ("range(0.25, 1.0, 0.25)", [0.25, 0.5, 0.75]),
        ("0.5", [0.5]),
        ("glob(*)", []),  # not a list of values: the sweeper and the trials judge it
        ("choice(1, 2", []),
    ],
)
def test_the_candidates_a_search_may_try_are_each_choice_and_both_ends_of_an_interval(text, values):
    assert search_candidates("model.optimizer.lr", text) == pytest.approx(values)


def test_a_search_with_nothing_to_search_is_refused():
    with pytest.raises(ConfigError) as refused:
        search_space(["hparams_search=_search"])  # the shared base of the searches, alone
    assert str(refused.value) == (
        "the search has no hydra.sweeper.params to explore: use hparams_search=optuna or qemg_rate, or a search file "
        "of your own that lists them"
    )
