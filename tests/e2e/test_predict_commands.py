"""emg-predict through its command line: windows, records and subjects written for a folder of new recordings."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np

from emg_lightning.cli.predict import main as predict_main

from conftest import REPO, run_main, write_record

MODEL_RATE = 2343.75  # TINY_DATA's rate


def test_emg_predict_command_writes_windows_records_and_subjects(tiny_models, tmp_path, capsys):
    folder = tmp_path / "clinic"
    folder.mkdir()
    digital = np.round(np.random.default_rng(3).standard_normal(int(4000 * 3.5)) * 300)
    write_record(folder, "patient1_a", digital, 4000.0, 10000.0, "mV")
    write_record(folder, "patient1_b", digital[::-1].copy(), 4000.0, 10000.0, "mV")
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "emg_lightning.cli.predict",
        str(tiny_models["run"]),
        str(folder),
        "--out",
        str(out),
    ]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| patient1_a | patient1_a | 3 |" in result.stdout
    windows = list(csv.DictReader(open(out / "predictions.csv")))
    records = list(csv.DictReader(open(out / "records.csv")))
    assert len(windows) == 6 and [w["start_s"] for w in windows[:3]] == ["0.0000", "1.0000", "2.0000"]
    assert [r["unit"] for r in records] == ["mV", "mV"] and {r["windows"] for r in records} == {"3"}
    first = np.mean([[float(w[f"p_{c}"]) for c in ("normal", "als", "myopathy")] for w in windows[:3]], axis=0)
    np.testing.assert_allclose([float(records[0][f"p_{c}"]) for c in ("normal", "als", "myopathy")], first, atol=1e-5)
    assert json.loads((out / "prediction.json").read_text())["model_sample_rate_hz"] == MODEL_RATE
    slow_dir = tmp_path / "slow"
    slow_dir.mkdir()
    write_record(slow_dir, "slow", np.zeros(4000), 1000.0, 10.0, "uV")
    code, _, err = run_main(predict_main, [tiny_models["run"], slow_dir, "--out", tmp_path / "x"], capsys)
    assert code == 2 and "below the model's" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()
