"""emg-cv end to end through its command line on tiny synthetic data: all folds, reruns skip, resume after a crash,
a failing fold, two processes sharing a folder, Ctrl-C and SIGTERM."""

from __future__ import annotations

import fcntl
import json
import shutil
import signal
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from emg_lightning.config import compose_config, resolved_config
from emg_lightning.cv.identity import cv_settings
from emg_lightning.runs import LOCK

from conftest import REPO, TINY_DATA

pytestmark = pytest.mark.slow


# a data.sample_rate given on the command line would fix a searched rate (the Optuna sweeper's rule)
TINY_AT_ANY_RATE = [setting for setting in TINY_DATA if not setting.startswith("data.sample_rate=")]


def run_cv(cv_dir, *args, data=TINY_DATA):
    result = subprocess.run(
        [sys.executable, "-m", "emg_lightning.cli.cv", *data, "trainer.max_epochs=1", *args, f"cv_dir={cv_dir}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return result


def pooled(cv_dir):
    summary = json.loads((cv_dir / "cv_summary.json").read_text())
    return summary["pooled"], summary["per_fold"]


def test_group_kfold_cv_reruns_resumes_and_reproduces(tmp_path):
    cv_dir = tmp_path / "cv"
    first = run_cv(cv_dir, "split=group_kfold", "split.k=3")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "3 folds x 1 seed(s) = 3 jobs" in first.stdout and "[emg-cv] 3/3 done" in first.stdout
    for name in ("cv_summary.json", "cv_summary.md", "confusion_matrices.png", "per_fold_accuracy.png"):
        assert (cv_dir / name).is_file()
    assert sorted(p.name for p in (cv_dir / "seed_0").iterdir()) == ["fold_00", "fold_01", "fold_02"]
    reference = pooled(cv_dir)
    md = (cv_dir / "cv_summary.md").read_text()
    assert "Split: `group_kfold`, 3 folds; subject-independent" in md and "| subject |" in md
    assert "val/bal_acc of the tested weights" in md and "(higher is better)" in md

    again = run_cv(cv_dir, "split=group_kfold", "split.k=3")
    assert again.returncode == 0 and again.stdout.count("already finished") == 3
    assert pooled(cv_dir) == reference

    # a fold killed after training but before its test, a fold killed after its last checkpoint mid-training, and a
    # fold lost entirely: only they run again, and the first is tested without training any further
    for fold in ("fold_00", "fold_01"):
        (cv_dir / "seed_0" / fold / "metrics.json").unlink()
        (cv_dir / "seed_0" / fold / "predictions.csv").unlink()
    (cv_dir / "seed_0" / "fold_01" / "fit_finished.json").unlink()
    shutil.rmtree(cv_dir / "seed_0" / "fold_02")
    resumed = run_cv(cv_dir, "split=group_kfold", "split.k=3")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "fold 0, seed 0: training had finished" in resumed.stdout
    assert "fold 1, seed 0: resuming from" in resumed.stdout and "already finished" not in resumed.stdout
    assert pooled(cv_dir) == reference  # identical final numbers


def test_loso_cv_with_two_seeds_and_a_failing_fold(tmp_path):
    cv_dir = tmp_path / "cv"
    settings = resolved_config(compose_config([*TINY_DATA, "trainer.max_epochs=1"]))  # what run_cv passes
    cv_dir.mkdir()
    (cv_dir / "cv_plan.json").write_text(json.dumps({"folds": [], "seeds": [], "settings": cv_settings(settings)}))
    broken = cv_dir / "seed_1" / "fold_03"
    broken.mkdir(parents=True)
    # one fold folder from another configuration, with a checkpoint of its own (without one it holds nothing to mix
    # with, and the CV would take it over)
    (broken / "config.yaml").write_text("something: else\n")
    (broken / "checkpoints").mkdir()
    (broken / "checkpoints" / "last.ckpt").write_bytes(b"weights of another configuration")
    result = run_cv(cv_dir, "seeds=[0,1]")
    assert result.returncode == 1  # the failure is reported ...
    assert "6 folds x 2 seed(s) = 12 jobs" in result.stdout
    assert "fold 3, seed 1 failed" in result.stderr and "run the same command again" in result.stderr
    assert "PARTIAL: 11 of 12 jobs" in result.stdout and not (cv_dir / "cv_summary.json").exists()
    summary = json.loads((cv_dir / "cv_summary.partial.json").read_text())
    assert summary["complete"] is False and summary["missing"] == [[3, 1]]
    assert len(summary["per_fold"]) == 11  # ... and the other folds are kept
    assert summary["failed"][0]["fold"] == 3 and "other settings" in summary["failed"][0]["error"]
    assert summary["seeds"] == [0, 1] and {k: summary["protocol"][k] for k in ("split", "leaky")} == {
        "split": "loso",
        "leaky": False,
    }
    assert summary["protocol"]["hparams"]["source"] == "fixed"
    assert summary["pooled"]["subject"]["per_seed"]["0"]["n"] == 6
    shutil.rmtree(broken / "checkpoints")  # the cause removed: the same command finishes the CV
    again = run_cv(cv_dir, "seeds=[0,1]")
    assert again.returncode == 0, again.stderr[-3000:]
    assert not (broken / "failed.json").exists()
    assert json.loads((cv_dir / "cv_summary.json").read_text())["failed"] == []


def test_a_closed_form_cv_reports_each_folds_inner_choice_and_its_seeds_draw_other_inner_folds(tmp_path):
    cv_dir = tmp_path / "cv"
    three_per_class = "data.synthetic.subjects_per_class={normal:3,als:3,myopathy:3}"  # 6 fitting subjects, 5 folds
    result = run_cv(cv_dir, "model=qemg", three_per_class, "split=group_kfold", "split.k=3", "seeds=[0,1]")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "chosen by 3 draws of a 5-fold inner cross-validation over the 6 training + validation" in result.stdout
    summary = json.loads((cv_dir / "cv_summary.json").read_text())
    chosen = summary["protocol"]["hparams"]["chosen"]
    assert sorted(chosen) == [f"seed_{seed}/fold_{fold:02d}" for seed in (0, 1) for fold in range(3)]
    grid = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)
    for run, values in chosen.items():
        metrics = json.loads((cv_dir / run / "metrics.json").read_text())
        assert values == {"model.l2": metrics["l2"]} and metrics["l2"] in grid
    md = (cv_dir / "cv_summary.md").read_text()
    assert "fixed in the configuration (a report cannot know whether they were chosen before any result was seen" in md
    assert "the L2 strength (model.l2_grid) chosen in each fold by an inner" in md
    assert "Selection score (validation data only, never the test set): inner cross-validation loss" in md
    assert "(lower is better). It is not nested: each fold's score comes from its own validation subjects" in md
    # the seed draws the inner folds: the two seeds' fits of one fold score their strengths on other subject groups
    by_seed = [
        json.loads((cv_dir / f"seed_{seed}" / "fold_00" / "metrics.json").read_text())["inner_log_loss_by_l2"]
        for seed in (0, 1)
    ]
    assert max(abs(by_seed[0][l2] - by_seed[1][l2]) for l2 in by_seed[0]) > 1e-6


def test_cv_bad_settings_are_one_line(tmp_path):
    result = run_cv(tmp_path / "cv", "seeds=[a]")
    assert result.returncode == 2 and result.stderr.strip() == (
        "error: seeds=[a] must be a list of integers, e.g. seeds=[0,1,2]"
    )


def cv_folder_of(stdout: str):
    from pathlib import Path

    return Path(next(line for line in stdout.splitlines() if " jobs in " in line).split(" jobs in ")[1].strip())


def test_a_variant_never_reports_the_earlier_numbers_and_concurrent_runs_train_each_fold_once(tmp_path):
    base = ["split=group_kfold", "split.k=3", "trainer.max_epochs=1", f"paths.log_dir={tmp_path / 'logs'}"]
    variant = ["label_smoothing=fixed", "model.optimizer.lr=0.1"]

    def cv(*args):
        return subprocess.run(
            [sys.executable, "-m", "emg_lightning.cli.cv", *TINY_DATA, *base, *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
        )

    first = cv()
    assert first.returncode == 0, first.stderr[-3000:]
    reference_dir = cv_folder_of(first.stdout)
    reference = pooled(reference_dir)
    # the default folder names the configuration: the variant gets its own folder and its own numbers
    second = cv(*variant)
    assert second.returncode == 0, second.stderr[-3000:]
    assert cv_folder_of(second.stdout) != reference_dir and pooled(reference_dir) == reference
    # an explicit folder holding the first configuration is refused before any job, naming what differs
    refused = cv(*variant, f"cv_dir={reference_dir}")
    assert refused.returncode == 2 and "holds folds of other settings" in refused.stderr
    assert "label_smoothing.name" in refused.stderr and "model.optimizer.lr" in refused.stderr
    assert pooled(reference_dir) == reference
    # two processes on one new folder: every fold trained once, the summary of a single run
    shared = tmp_path / "shared"
    command = [sys.executable, "-m", "emg_lightning.cli.cv", *TINY_DATA, *base, f"cv_dir={shared}"]
    processes = [
        subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    stdout = outputs[0][0] + outputs[1][0]
    for fold in (0, 1, 2):
        assert stdout.count(f"\nfold {fold} (group_kfold") == 1  # tested (and so trained) by one process only
    assert pooled(shared) == reference


def test_a_fold_another_process_trains_is_left_to_it_and_taken_up_if_that_process_lets_go_unfinished(tmp_path):
    cv_dir = tmp_path / "cv"
    busy = cv_dir / "seed_0" / "fold_01"
    busy.mkdir(parents=True)
    command = [sys.executable, "-m", "emg_lightning.cli.cv", *TINY_DATA, "split=group_kfold", "split.k=3"]
    with open(busy / LOCK, "a+") as held:  # what a second emg-cv training fold 1 holds
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("4242\n")
        held.flush()
        process = subprocess.Popen(
            [*command, f"cv_dir={cv_dir}"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        seen = []
        for line in process.stdout:
            seen.append(line)
            if "[emg-cv] waiting for seed_0/fold_01" in line:
                break
        # the other folds were trained meanwhile instead of waiting behind fold 1
        assert all((cv_dir / "seed_0" / f"fold_0{k}" / "metrics.json").is_file() for k in (0, 2)), "".join(seen)[-3000:]
        assert not (busy / "metrics.json").exists() and not (busy / "failed.json").exists()
    # the holder let go without finishing (it died): emg-cv trains fold 1 itself and completes the CV
    rest, _ = process.communicate(timeout=600)
    stdout = "".join(seen) + rest
    assert process.returncode == 0, stdout[-3000:]
    assert "another process (pid 4242) is training this fold: left to it" in stdout
    assert "fold 1, seed 0: left to the process training it" in stdout
    assert stdout.count("\nfold 1 (group_kfold") == 1 and (busy / "metrics.json").is_file()
    assert json.loads((cv_dir / "cv_summary.json").read_text())["complete"] is True


def test_ctrl_c_while_waiting_for_another_process_is_one_line(tmp_path):
    cv_dir = tmp_path / "cv"
    busy = cv_dir / "seed_0" / "fold_01"
    busy.mkdir(parents=True)
    command = [sys.executable, "-m", "emg_lightning.cli.cv", *TINY_DATA, "split=group_kfold", "split.k=3"]
    with open(busy / LOCK, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        process = subprocess.Popen(
            [*command, f"cv_dir={cv_dir}"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # a shell's background job starts with SIGINT ignored: give the child Python's default handling
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        for line in process.stdout:
            if "[emg-cv] waiting for seed_0/fold_01" in line:
                break
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    assert (
        stderr.strip().splitlines()[-1]
        == f"error: emg-cv interrupted by Ctrl-C: run the same command again to finish {cv_dir}"
    )
    assert "Traceback" not in stderr


def test_nested_search_never_shows_an_outer_fold_its_test_subjects(tmp_path):
    cv_dir = tmp_path / "cv"
    result = run_cv(
        cv_dir,
        "data.synthetic.subjects_per_class={normal:3,als:3,myopathy:3}",
        "data.synthetic.records_per_subject=[1,1]",
        "split=group_kfold",
        "split.k=2",
        "trainer.max_epochs=1",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=2",
        "nested_jobs=2",  # both outer folds at once: each still searches on its own training subjects only
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((cv_dir / "cv_summary.json").read_text())
    hparams = summary["protocol"]["hparams"]
    assert hparams["source"] == "nested" and "model.optimizer.lr" in hparams["searched"]
    assert sorted(hparams["chosen"]) == ["seed_0/fold_00", "seed_0/fold_01"]
    assert "nested search" in (cv_dir / "cv_summary.md").read_text()
    for fold in (0, 1):
        outer = json.loads((cv_dir / "seed_0" / f"fold_{fold:02d}" / "metrics.json").read_text())
        trials = sorted((cv_dir / "search" / "seed_0" / f"fold_{fold:02d}").glob("trial_*/metrics.json"))
        assert len(trials) == 2
        for trial in map(lambda p: json.loads(p.read_text()), trials):
            assert trial["tested"] is False and trial["test_subjects"] == outer["test_subjects"]
            seen = set(trial["train_subjects"]) | set(trial["val_subjects"])
            assert not seen & set(outer["test_subjects"])  # the inner search never saw the outer test subjects
        chosen = hparams["chosen"][f"seed_0/fold_{fold:02d}"]["model.optimizer.lr"]
        assert outer["test_windows"] > 0 and chosen > 0


def test_nested_choice_of_the_qemg_feature_rate_takes_the_lowest_inner_loss_of_each_fold(tmp_path):
    cv_dir = tmp_path / "cv"
    result = run_cv(
        cv_dir,
        "model=qemg",
        "data.synthetic.subjects_per_class={normal:3,als:3,myopathy:3}",
        "data.synthetic.records_per_subject=[1,1]",
        "split=group_kfold",
        "split.k=2",
        "hparams_search=qemg_rate",
        'hydra.sweeper.params={data.sample_rate:"choice(2343.75,1171.875)"}',
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.n_jobs=2",  # both rates of an inner search at once, through the launcher
        "launcher=local_parallel",
        "hydra.launcher.n_jobs=2",
        data=TINY_AT_ANY_RATE,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    hparams = json.loads((cv_dir / "cv_summary.json").read_text())["protocol"]["hparams"]
    assert hparams["source"] == "nested" and hparams["searched"] == ["data.sample_rate"]
    for fold in (0, 1):
        search = cv_dir / "search" / "seed_0" / f"fold_{fold:02d}"
        losses = {}
        for trial in search.glob("trial_*"):
            rate = float(OmegaConf.load(trial / "config.yaml").data.sample_rate)
            losses[rate] = json.loads((trial / "metrics.json").read_text())["inner_log_loss"]
        assert sorted(losses) == [1171.875, 2343.75] and losses[1171.875] != losses[2343.75]
        best = min(losses, key=losses.get)
        outer = cv_dir / "seed_0" / f"fold_{fold:02d}"
        assert float(OmegaConf.load(outer / "config.yaml").data.sample_rate) == best
        assert hparams["chosen"][f"seed_0/fold_{fold:02d}"]["data.sample_rate"] == best
        table = [line for line in (search / "search_results.md").read_text().splitlines() if "| trial_" in line]
        assert [float(line.split("|")[2]) for line in table] == pytest.approx(sorted(losses.values()), abs=1e-4)


def test_a_searched_key_fixed_on_the_command_line_is_refused_before_any_job(tmp_path):
    cv_dir = tmp_path / "cv"
    result = run_cv(cv_dir, "model=qemg", "hparams_search=qemg_rate")  # TINY_DATA sets data.sample_rate=2343.75
    assert result.returncode == 2 and not cv_dir.exists()
    assert result.stderr.strip() == (
        "error: data.sample_rate=2343.75 fixes data.sample_rate, which the search explores: drop it to search it, "
        "or leave hparams_search out to run that value"
    )


def test_the_rate_search_on_a_network_trained_by_epochs_is_refused_before_any_job(tmp_path):
    cv_dir = tmp_path / "cv"  # its objective, the closed-form fit's inner loss, would be NaN in every trial
    result = run_cv(cv_dir, "model=resemgnet", "hparams_search=qemg_rate", data=TINY_AT_ANY_RATE)
    assert result.returncode == 2 and not cv_dir.exists()
    assert result.stderr.strip() == (
        "error: optimized_metric=inner_log_loss is the inner cross-validation score of a model fitted in closed form "
        "(model=qemg), but model.net.name=resemgnet is trained by epochs: search it with hparams_search=optuna, or "
        "use model=qemg"
    )


def test_a_nested_search_offering_a_value_no_trial_could_run_is_refused_before_any_job(tmp_path):
    cv_dir = tmp_path / "cv"
    offered = 'hydra.sweeper.params={data.sample_rate:"choice(-5,1171.875)"}'
    result = run_cv(cv_dir, "model=qemg", "hparams_search=qemg_rate", offered, data=TINY_AT_ANY_RATE)
    assert result.returncode == 2 and not cv_dir.exists()
    assert result.stderr.strip() == (
        "error: hydra.sweeper.params.data.sample_rate offers -5, which no trial could run: data.sample_rate must be "
        "positive or null (native rate), got -5"
    )


def test_a_search_range_typed_on_the_command_line_is_searched_and_checked(tmp_path):
    cv_dir = tmp_path / "cv"
    refused = run_cv(cv_dir, "model=qemg", "data.sample_rate=choice(-5,1171.875)", data=TINY_AT_ANY_RATE)
    assert refused.returncode == 2 and not cv_dir.exists()
    assert refused.stderr.strip() == (
        "error: data.sample_rate=choice(-5,1171.875) is a search range, and emg-cv cross-validates one "
        "configuration: add hparams_search=optuna to search it on each outer fold's training subjects, or give "
        "data.sample_rate one value"
    )
    impossible = run_cv(
        cv_dir, "model=qemg", "hparams_search=qemg_rate", "data.sample_rate=choice(-5,1171.875)", data=TINY_AT_ANY_RATE
    )
    assert impossible.returncode == 2 and not cv_dir.exists()
    assert impossible.stderr.strip() == (
        "error: the search range data.sample_rate offers -5, which no trial could run: data.sample_rate must be "
        "positive or null (native rate), got -5"
    )
    result = run_cv(
        cv_dir,
        "model=qemg",
        "data.synthetic.subjects_per_class={normal:3,als:3,myopathy:3}",
        "data.synthetic.records_per_subject=[1,1]",
        "split=group_kfold",
        "split.k=2",
        "hparams_search=qemg_rate",
        "data.sample_rate=2343.75,1171.875",  # Hydra's list sweep: the search's choice
        "hydra.sweeper.n_trials=2",
        data=TINY_AT_ANY_RATE,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    hparams = json.loads((cv_dir / "cv_summary.json").read_text())["protocol"]["hparams"]
    assert hparams["source"] == "nested" and hparams["searched"] == ["data.sample_rate"]
    for fold in (0, 1):
        rates = sorted(
            float(OmegaConf.load(trial / "config.yaml").data.sample_rate)
            for trial in (cv_dir / "search" / "seed_0" / f"fold_{fold:02d}").glob("trial_*")
        )
        assert rates == [1171.875, 2343.75]  # the typed range, not the search file's grid
