"""Never a wrong number: what cannot be honestly computed is refused with one line that names the file or setting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from emg_lightning.cli.report import main as report_main
from emg_lightning.data.cache import build_table
from emg_lightning.data.readers import wfdb_dir
from emg_lightning.data.records import Recording
from emg_lightning.data.windows import WindowSettings
from emg_lightning.reports.cv_summary import report
from emg_lightning.runtime.errors import ConfigError, DataError

from conftest import TINY_DATA, compose_train, run_main, write_wfdb


def test_non_finite_test_probabilities_are_an_error_not_an_argmax():
    from emg_lightning.classifier import EMGClassifier
    from emg_lightning.runtime.errors import DivergedError

    model = EMGClassifier(net={"name": "features", "sample_rate": 2343.75})
    batch = {
        "x": torch.full((2, 1, 2343), float("nan")),
        "y": torch.tensor([0, 1]),
        "subject": torch.tensor([0, 0]),
        "record": torch.tensor([0, 1]),
        "window": torch.tensor([0, 0]),
    }
    with pytest.raises(DivergedError, match="non-finite .*probabilit"):
        model.test_step(batch, 0)


# -- the CV report reads files it can trust -----------------------------------------------------------------------


def write_fold(cv_dir: Path, fold: int, subject: str, label: str, rows: list[str], seed: int = 0) -> Path:
    folder = cv_dir / f"seed_{seed}" / f"fold_{fold:02d}"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"fold": fold, "seed": seed, "split": "loso", "leaky": False}))
    header = "fold,seed,subject,record,window,label,predicted,p_normal,p_als\n"
    body = "".join(f"{fold},{seed},{subject},{subject}_r{i // 2},{i},{label},{r}\n" for i, r in enumerate(rows))
    (folder / "predictions.csv").write_text(header + body)
    return folder / "predictions.csv"


@pytest.mark.parametrize(
    "row, message",
    [
        ("normal,nan,0.5", "line 3: p_normal is not a finite number"),
        ("normal,1.2,-0.2", "line 3: p_normal=1.2 is outside [0, 1]"),
        ("normal,0.5,0.2", "line 3: the probabilities sum to 0.7"),
        ("normal,abc,0.5", "line 3: p_normal='abc' is not a number"),
        ("normal,0.5", "line 3: 8 fields, the header has 9"),
        ("sick,0.5,0.5", "line 3: predicted 'sick' is not one of"),
    ],
)
def test_the_cv_report_refuses_damaged_predictions_naming_file_and_line(tmp_path, capsys, row, message):
    path = write_fold(tmp_path, 0, "C01", "normal", ["normal,0.9,0.1", row])
    write_fold(tmp_path, 1, "A01", "als", ["als,0.1,0.9", "als,0.2,0.8"])
    with pytest.raises(
        DataError,
        match=f"{path}".replace("_", ".") + ".*" + message.replace("[", r"\[").replace("(", r"\(").replace(".", r"\."),
    ):
        report(tmp_path)
    code, _, err = run_main(report_main, [tmp_path], capsys)  # the command: the same one line, exit 2
    assert code == 2 and err.count("\n") == 1 and message.split(":")[1].strip()[:12] in err


def test_a_partial_cv_is_marked_partial_everywhere(tmp_path, capsys):
    write_fold(tmp_path, 0, "C01", "normal", ["normal,0.9,0.1", "normal,0.8,0.2"])
    (tmp_path / "cv_plan.json").write_text(json.dumps({"folds": [0, 1], "seeds": [0, 1]}))
    summary = report(tmp_path)
    assert summary["complete"] is False
    assert sorted(map(tuple, summary["missing"])) == [(0, 1), (1, 0), (1, 1)]  # (fold, seed)
    assert (tmp_path / "cv_summary.partial.json").is_file() and (tmp_path / "cv_summary.partial.md").is_file()
    assert not (tmp_path / "cv_summary.json").exists()
    assert "PARTIAL: 1 of 4 jobs" in (tmp_path / "cv_summary.partial.md").read_text()
    code, out, _ = run_main(report_main, [tmp_path], capsys)
    assert code == 1 and "PARTIAL: 1 of 4 jobs" in out


def test_a_fold_without_test_windows_is_an_error(tmp_path):
    path = write_fold(tmp_path, 0, "C01", "normal", [])
    with pytest.raises(DataError, match=f"{path}: no test windows"):
        report(tmp_path)


# -- labels are consistent or refused ---------------------------------------------------------------------------


def recording(name: str, subject: str, label: str, fs: float = 4000.0) -> Recording:
    rng = np.random.default_rng(0)
    return Recording(name, subject, label, fs, np.round(rng.standard_normal(int(fs * 2)) * 400).astype(np.int16), 10.0)


def test_a_subject_with_two_labels_is_refused_naming_both_records():
    with pytest.raises(DataError, match="subject S1 .*r1 \\(als\\).*r2 \\(normal\\)"):
        build_table([recording("r1", "S1", "als"), recording("r2", "S1", "normal")], WindowSettings())


def test_a_record_seen_twice_is_refused():
    with pytest.raises(DataError, match="record r1 appears twice"):
        build_table([recording("r1", "S1", "als"), recording("r1", "S2", "als")], WindowSettings())


def test_a_manifest_listing_a_record_twice_names_both_lines(tmp_path):
    write_wfdb(tmp_path, "A1_0")
    manifest = tmp_path / "labels.csv"
    manifest.write_text("record,subject,label\nA1_0,P1,als\nA1_0,P1,normal\n")
    with pytest.raises(DataError, match="labels.csv: record A1_0 is listed twice, on lines 2 and 3"):
        wfdb_dir.read_manifest(manifest)


# -- sampling rates are facts ----------------------------------------------------------------------------------------


def test_resampling_above_a_records_own_rate_is_refused():
    with pytest.raises(DataError, match="r1 is recorded at 4000 Hz: data.sample_rate=8000 .* above"):
        build_table([recording("r1", "S1", "als")], WindowSettings(sample_rate=8000))


def test_mixed_rates_are_reported_and_refused_where_the_source_has_one_rate():
    records = [recording("r1", "S1", "als"), recording("r2", "S2", "normal"), recording("r3", "S3", "als", 2000.0)]
    with pytest.raises(DataError, match="r3 .*2000 Hz.* others 4000 Hz.*data.allow_mixed_rates=true"):
        build_table(iter(records), WindowSettings(sample_rate=1000), allow_mixed_rates=False)
    table = build_table(iter(records), WindowSettings(sample_rate=1000), allow_mixed_rates=True)
    assert table.summary["native_rates_hz"] == {"2000": 1, "4000": 2}
    assert table.summary["records_at_other_rates"] == {"r3": 2000.0}


# -- units, as real headers write them -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "unit, factor",
    [("mv", 1e-3), ("MV", 1e-3), ("mV", 1e-3), ("uv", 1.0), ("µV", 1.0), ("μV", 1.0), ("uV", 1.0), ("V", 1e-6)],
)
def test_units_are_matched_case_insensitively(tmp_path, unit, factor):
    write_wfdb(tmp_path, "A1_0", unit=unit)
    record = wfdb_dir.read_record(tmp_path / "A1_0.hea", "1", "als")
    assert record.adc_gain == pytest.approx(10.0 * factor)


def test_a_header_without_a_unit_means_millivolts_and_says_so(tmp_path):
    write_wfdb(tmp_path, "A1_0", unit="mV")
    header = tmp_path / "A1_0.hea"
    header.write_text(header.read_text().replace("/mV", ""))
    record = wfdb_dir.read_record(header, "1", "als")
    assert record.adc_gain == pytest.approx(0.01) and "assumed" in record.unit


def test_an_assumed_unit_is_said_on_the_console_for_training_and_prediction(tmp_path, caplog):
    from emg_lightning.data.readers import SourceOptions
    from emg_lightning.data.readers.record_files import read_any
    from emg_lightning.data.sources import load_window_table

    records = tmp_path / "records"
    records.mkdir()
    for name, seed in (("A1_0", 0), ("B2_0", 1), ("C3_0", 2)):
        write_wfdb(records, name, seed=seed, unit="uV")
    for name in ("A1_0", "B2_0", "C3_0"):  # every header loses its unit (one gain per table)
        header = records / f"{name}.hea"
        header.write_text(header.read_text().replace("/uV", ""))
    options = SourceOptions(root=str(records), pattern=r"(?P<label>[A-Z])(?P<subject>\d+)_\d+")
    for attempt in ("built", "read from the cache"):
        caplog.clear()
        with caplog.at_level("WARNING"):
            load_window_table("wfdb", WindowSettings(), tmp_path / "cache", options)
        said = [r.getMessage() for r in caplog.records if "give no unit" in r.getMessage()]
        assert len(said) == 1 and "3 record header(s)" in said[0] and "per mV" in said[0], attempt
    caplog.clear()
    with caplog.at_level("WARNING"):
        read_any(records / "A1_0.hea")
        write_wfdb(tmp_path, "D4_0", unit="uV")
        read_any(tmp_path / "D4_0.hea")
    said = [r.getMessage() for r in caplog.records if "give no unit" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(str(records / "A1_0.hea"))


# -- settings that cannot mean anything are refused before any work ---------------------------------------------------


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.max_epochs=0", "trainer.max_epochs=0"),
        ("split.val_subjects_per_class=50", "split.val_subjects_per_class=50"),
        ("data.classes=[normal,normal,als]", "data.classes"),
        ("label_smoothing=fixed label_smoothing.epsilon=1.5", "label_smoothing.epsilon=1.5"),
        ("label_smoothing=fixed label_smoothing.epsilon=-0.1", "label_smoothing.epsilon=-0.1"),
        ("model.optimizer.lr=-0.001", "model.optimizer.lr=-0.001"),
        ("data.fold=abc", "data.fold='abc'"),
        ("seed=abc", "seed='abc'"),
        ("data.sample_rate=100000", "data.sample_rate=100000"),
        ("threads=0", "threads=0 must be a number of CPU threads"),
        ("trainer.use_distributed_sampler=true", "trainer.use_distributed_sampler=true would pad"),
    ],
)
def test_nonsense_settings_are_one_line_errors_and_leave_no_run_folder(tmp_path, capsys, override, message):
    from hydra.core.global_hydra import GlobalHydra

    from emg_lightning.training import run

    out = tmp_path / "run"
    try:
        cfg = compose_train([*TINY_DATA, *override.split()], out)
        with pytest.raises(SystemExit) as exit_info:
            run(cfg)
    finally:
        GlobalHydra.instance().clear()
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert exit_info.value.code == 2 and len(errors) == 1 and message in errors[0], errors
    assert not out.exists()


# -- every rerun path ends somewhere ----------------------------------------------------------------------------------


def test_ctrl_c_between_trainings_of_emg_train_is_one_line(monkeypatch, capsys):
    # e.g. while Hydra composes the configuration or between the trials of a search: no training to hand it to
    from emg_lightning.cli import train

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "main", interrupted)
    with pytest.raises(SystemExit) as stopped:
        train.command()
    assert stopped.value.code == 130
    assert capsys.readouterr().err == (
        "error: emg-train interrupted by Ctrl-C between trainings: run the same command again to go on\n"
    )


@pytest.mark.parametrize("raised, code, words", [("sigterm", 143, "SIGTERM"), ("ctrl-c", 130, "Ctrl-C")])
def test_an_interrupted_test_stage_gives_the_resume_hint(tmp_path, raised, code, words):
    from types import SimpleNamespace

    from lightning.pytorch.utilities.exceptions import SIGTERMException
    from omegaconf import OmegaConf

    from emg_lightning.training import InterruptedRun, _interruptible

    cfg = OmegaConf.create({"paths": {"output_dir": str(tmp_path)}, "data": {"fold": 3}, "seed": 0})
    trainer = SimpleNamespace(current_epoch=7, interrupted=raised == "ctrl-c")
    with pytest.raises(InterruptedRun) as info, _interruptible(cfg, trainer, "testing"):
        raise SIGTERMException() if raised == "sigterm" else SystemExit(1)  # Lightning exits after Ctrl-C
    assert info.value.exit_code == code
    assert f"interrupted by {words} while testing in epoch 7 of fold 3" in str(info.value)
    assert f"hydra.run.dir={tmp_path}" in str(info.value)
    # no checkpoint yet (stopped before the first epoch ended): the same command starts over, it cannot resume
    assert "no checkpoint was written yet" in str(info.value) and "resume" not in str(info.value)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    with pytest.raises(InterruptedRun) as info, _interruptible(cfg, trainer, "testing"):
        raise SIGTERMException() if raised == "sigterm" else SystemExit(1)
    assert "to resume from its last checkpoint" in str(info.value)


def test_the_cv_report_refuses_to_pool_folds_of_different_settings(tmp_path):
    write_fold(tmp_path, 0, "C01", "normal", ["normal,0.9,0.1", "normal,0.8,0.2"])
    write_fold(tmp_path, 1, "A01", "als", ["als,0.1,0.9", "als,0.2,0.8"])
    for fold, lr in ((0, 0.001), (1, 0.1)):
        config = {"model": {"optimizer": {"lr": lr}}, "data": {"fold": fold, "num_workers": fold}, "seed": 0}
        (tmp_path / "seed_0" / f"fold_{fold:02d}" / "config.yaml").write_text(json.dumps(config))
    with pytest.raises(DataError, match=r"hold different settings \(model\.optimizer\.lr\)"):
        report(tmp_path)  # data.fold differs by design and data.num_workers is a runtime key: neither is named


def test_a_refusal_found_in_the_data_is_not_preceded_by_the_config_tree(tmp_path):
    from conftest import emg_train

    result = emg_train(*TINY_DATA, "data.classes=[normal,foo]", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 2
    assert "names foo, but the data's labels are" in result.stderr.strip().splitlines()[-1]
    assert "config" not in result.stdout and "├──" not in result.stdout + result.stderr  # no tree before it


def test_processes_without_a_batch_of_their_own_are_refused_before_any_starts(tmp_path):
    from emg_lightning.config import build_datamodule

    datamodule = build_datamodule(compose_train(TINY_DATA, tmp_path))
    datamodule.setup()
    n_train, n_val = len(datamodule.train_set), len(datamodule.val_set)
    message = r"the {} set's {} windows make 1 batch\(es\) of data.batch_size={} for 2 processes"
    datamodule.batch_size = max(n_train, n_val)
    with pytest.raises(ConfigError, match=message.format("training", n_train, datamodule.batch_size)):
        datamodule.check_processes(2)
    datamodule.batch_size = n_val  # two training batches (n_train > n_val here), one of validation
    assert n_train > n_val
    with pytest.raises(ConfigError, match=message.format("validation", n_val, n_val)):
        datamodule.check_processes(2)
    datamodule.batch_size = 2
    datamodule.check_processes(2)


def test_the_cv_report_names_a_file_or_a_missing_folder_for_what_it_is(tmp_path):
    (tmp_path / "cv_summary.json").write_text("{}")
    with pytest.raises(DataError, match="cv_summary.json is a file, not a CV folder"):
        report(tmp_path / "cv_summary.json")
    with pytest.raises(DataError, match="CV folder .*nope does not exist"):
        report(tmp_path / "nope")
    with pytest.raises(DataError, match="no finished fold under"):
        report(tmp_path)
