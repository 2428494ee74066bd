"""Outputs never destroy inputs: where emg-predict, emg-eval, emg-explain and emg-export may write."""

import pytest

from emg_lightning.cli.explain import window_numbers
from emg_lightning.inference.predict import check_output_folder
from emg_lightning.runtime.errors import DataError


def test_a_run_folder_a_cv_folder_a_fold_and_a_file_are_refused(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "metrics.json").write_text("{}")
    with pytest.raises(DataError, match="is a run folder \\(it holds checkpoints\\)"):
        check_output_folder(run)
    cv = tmp_path / "cv"
    (cv / "seed_0" / "fold_00").mkdir(parents=True)
    with pytest.raises(DataError, match="is a cross-validation folder"):
        check_output_folder(cv)
    (cv / "seed_0" / "fold_00" / "config.yaml").write_text("data: {}\n")
    with pytest.raises(DataError, match="is a run folder \\(it holds config.yaml\\)"):
        check_output_folder(cv / "seed_0" / "fold_00")
    (tmp_path / "file.csv").write_text("x")
    with pytest.raises(DataError, match="file.csv is a file"):
        check_output_folder(tmp_path / "file.csv")


def test_a_new_folder_or_an_earlier_prediction_folder_is_fine(tmp_path):
    assert check_output_folder(tmp_path / "new") == tmp_path / "new"
    earlier = tmp_path / "predictions-run"
    earlier.mkdir()
    (earlier / "prediction.json").write_text("{}")
    (earlier / "predictions.csv").write_text("fold\n")
    (earlier / "metrics.json").write_text("{}")  # emg-eval's own output: a rerun writes over it
    assert check_output_folder(earlier) == earlier


def test_window_numbers_are_checked():
    assert window_numbers("0,3,4") == [0, 3, 4]
    with pytest.raises(DataError, match="--windows abc must be window numbers separated by commas"):
        window_numbers("abc")
    with pytest.raises(DataError, match="window numbers start at 0"):
        window_numbers("-1")


def test_only_finished_models_are_models(tmp_path):
    """A run interrupted during training (last.ckpt, no fit_finished.json) and a CV folder missing planned folds
    are refused by every command that loads a model, naming what is missing."""
    import json

    from emg_lightning.inference.predict import load_model

    from conftest import untrained_run

    run = untrained_run(tmp_path / "run", "feature_linear")
    (run / "fit_finished.json").unlink()
    with pytest.raises(DataError, match="run did not finish training \\(no fit_finished.json"):
        load_model(run)
    cv = tmp_path / "cv"
    untrained_run(cv / "seed_0" / "fold_00", "feature_linear")
    (cv / "cv_plan.json").write_text(json.dumps({"folds": [0, 1], "seeds": [0]}))
    with pytest.raises(DataError, match="is a partial cross-validation: 1 planned fold model\\(s\\) are missing "):
        load_model(cv)
    untrained_run(cv / "seed_0" / "fold_01", "feature_linear")
    assert len(load_model(cv).runs) == 2
