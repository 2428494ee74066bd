"""emg-data through its command line: the summary of synthetic data and one-line errors for a bad folder."""

import json
import subprocess
import sys

import pytest

from conftest import REPO


def run_emg_data(*args):
    return subprocess.run(
        [sys.executable, "-m", "emg_lightning.cli.data", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_emg_data_on_synthetic_data(tmp_path):
    out = tmp_path / "summary.json"
    result = run_emg_data(
        "--json",
        str(out),
        "data.synthetic.subjects_per_class={normal:2,als:1,myopathy:1}",
        "data.synthetic.records_per_subject=[2,2]",
        "data.synthetic.duration_s=3.2",
    )
    assert result.returncode == 0, result.stderr
    assert "8 records, 4 subjects, 24 windows" in result.stdout
    summary = json.loads(out.read_text())
    normal = summary["per_class"]["normal"]
    assert {k: normal[k] for k in ("subjects", "records", "windows")} == {"subjects": 2, "records": 4, "windows": 12}
    assert 5 < normal["rms_uv"] < normal["peak_uv"] < 2500
    assert summary["units"] == {"uV": summary["records_in_folder"]}
    assert summary["windows_per_record"] == {"3": 8}


def test_emg_data_bad_root_is_one_line():
    result = run_emg_data("data=emglab", "data.root=/nonexistent")
    assert result.returncode == 2 and result.stderr.strip().startswith("error: EMGLab directory /nonexistent")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.realdata
def test_emg_data_on_the_real_recordings(emglab_dir, tmp_path):
    out = tmp_path / "summary.json"
    result = run_emg_data("--json", str(out), "data=emglab", f"data.root={emglab_dir}")
    assert result.returncode == 0, result.stderr
    s = json.loads(out.read_text())
    assert (s["records"], s["subjects"]) == (340, 22)
    assert {c: v["subjects"] for c, v in s["per_class"].items()} == {"normal": 9, "als": 7, "myopathy": 6}
    # 11 one-second windows per record at the native rate, minus the exclusions, each counted by its reason
    assert s["windows_dropped"] == {"flat": 10, "saturated": 10, "trimmed": 15}
    assert s["windows"] == 340 * 11 - 35 and s["window_samples"] == 23437
    assert len(s["saturated_samples_per_record"]) == 22
