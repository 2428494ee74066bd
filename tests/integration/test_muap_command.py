"""emg-muap on records whose motor units are known, on an expert's decomposition of a real record, and on the
records and files it must refuse (one line each)."""

from pathlib import Path

import numpy as np
import pytest
import wfdb

from emg_lightning.cli.muap import main as emg_muap
from emg_lightning.muap.eaf import ExpertTemplate, read_eaf, write_eaf

from conftest import motor_unit_signal, run_main

RATE = 23437.5
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def write_record(folder: Path, name: str, signal_uv: np.ndarray, rate: float = RATE, **comments: str) -> Path:
    """A WFDB record of ``signal_uv`` (gain 10 ADC units per uV, as N2001's 13.107), with header comments."""
    digital = np.clip(np.round(signal_uv * 10), -32768, 32767).astype(np.int16)[:, None]
    notes = [f"{k}: {v}" for k, v in {"muscle": "biceps brachii", **comments}.items()]
    wfdb.wrsamp(name, fs=rate, units=["uV"], sig_name=["emg"], d_signal=digital, fmt=["16"], adc_gain=[10.0],
                baseline=[0], write_dir=str(folder), comments=notes)  # fmt: skip
    return folder / f"{name}.hea"


def truth_annotation(signal, times, rate=RATE) -> str:
    half = int(0.0266 * rate)
    templates = {
        u: ExpertTemplate(np.median([signal[d - half : d + half + 1] for d in t[2:-2]], axis=0)[::2], rate / 2,
                          half // 2)
        for u, t in enumerate(times, 1)
    }  # fmt: skip
    return write_eaf({u: t / rate for u, t in enumerate(times, 1)}, templates)


def test_a_record_gives_its_picture_tables_and_annotation(tmp_path, capsys):
    signal, times = motor_unit_signal(rate=RATE)
    header = write_record(tmp_path, "known", signal)
    (tmp_path / "known.eaf").write_text(truth_annotation(signal, times))
    out = tmp_path / "muap"
    code, stdout, err = run_main(emg_muap, [header, "--reference", tmp_path / "known.eaf", "--out", out], capsys)
    assert code == 0, err
    assert "known: 2 of 2 regularly firing expert units found" in stdout
    rows = (out / "known_units.csv").read_text().splitlines()
    assert rows[0].startswith("unit,discharges,firing_rate_hz,isi_cov,duration_ms,amplitude_uv") and len(rows) == 3
    assert (out / "known.png").stat().st_size > 20_000
    agreement = __import__("json").loads((out / "known_agreement.json").read_text())
    assert agreement["precision"] >= 0.95 and agreement["recall"] >= 0.85
    # the detector's own .eaf reads back as EMGLAB annotation with every unit's discharges
    own = read_eaf(out / "known.muap.eaf")
    assert len(own.discharges_s) == 2 and sum(map(len, own.discharges_s.values())) == sum(
        int(r.split(",")[1]) for r in rows[1:]
    )
    assert not list(out.glob(".*partial*"))


def test_refusals_are_one_line(tmp_path, capsys):
    signal, times = motor_unit_signal(rate=RATE)
    header = write_record(tmp_path, "known", signal)
    other, other_times = motor_unit_signal(rate=RATE, seed=4)
    (tmp_path / "other.eaf").write_text(truth_annotation(other, other_times))
    (tmp_path / "cut.eaf").write_text(truth_annotation(signal, times)[:500])
    flat = write_record(tmp_path, "flat", np.zeros(int(RATE * 3)))
    slow = write_record(tmp_path, "slow", np.random.default_rng(0).standard_normal(12_000) * 20, rate=4000.0)
    (tmp_path / "afile").write_text("x")
    cases = [
        ([header, "--reference", tmp_path / "other.eaf"], "does not describe this record"),
        ([header, "--reference", tmp_path / "cut.eaf"], "not a readable EMGLAB annotation file"),
        ([flat], "no motor-unit potentials found"),
        ([slow], "recorded at 4000 Hz: motor-unit detection needs at least 11000 Hz"),
        ([header, flat, "--reference", tmp_path / "other.eaf"], "describes one record; 2 records were given"),
        ([tmp_path / "nothing.hea"], "neither a folder of WFDB records nor a record"),
    ]
    for args, message in cases:
        code, _, err = run_main(emg_muap, [*args, "--out", tmp_path / "out"], capsys)
        assert code == 2 and "Traceback" not in err, err
        assert err.strip().splitlines()[-1].startswith("error: ") and message in err, (args, err)
    code, _, err = run_main(emg_muap, [header, "--out", tmp_path / "afile"], capsys)
    assert code == 2 and "is a file" in err


def test_a_folder_gives_one_summary_and_names_what_it_skipped(tmp_path, capsys):
    folder = tmp_path / "records"
    folder.mkdir()
    for seed in (0, 1):
        write_record(folder, f"r{seed}", motor_unit_signal(rate=RATE, seed=seed)[0])
    write_record(folder, "flat", np.zeros(int(RATE * 3)))
    code, out, err = run_main(emg_muap, [folder, "--out", tmp_path / "muap"], capsys)
    assert code == 0, err
    assert "skipped flat.hea: no motor-unit potentials found" in err
    assert "2 of 3 records analysed" in out
    lines = (tmp_path / "muap" / "records.csv").read_text().splitlines()
    assert lines[0].startswith("record,label,subject,muscle,age,rate_hz,units") and len(lines) == 3


def test_each_value_is_placed_against_a_laboratorys_normal_range(tmp_path, capsys):
    lab = tmp_path / "lab"
    lab.mkdir()
    for seed in range(4):  # four normal subjects: the known units of motor_unit_signal
        write_record(
            lab, f"n{seed}", motor_unit_signal(rate=RATE, seed=seed)[0], **{"class": "normal", "subject": f"S{seed}"}
        )
    assert run_main(emg_muap, [lab, "--out", tmp_path / "reference"], capsys)[0] == 0
    # a patient whose units are twice as large and wider than the normal subjects' (400 / 250 uV, 0.5 / 0.3 ms)
    big = [{"amplitude_uv": 800.0, "width_ms": 0.6, "rate_hz": 9.0, "sign": 1.0},
           {"amplitude_uv": 500.0, "width_ms": 0.4, "rate_hz": 12.0, "sign": -1.0}]  # fmt: skip
    patient = write_record(tmp_path, "p", motor_unit_signal(rate=RATE, units=big, seed=9)[0], subject="P1")
    code, out, err = run_main(
        emg_muap, [patient, "--normal-from", tmp_path / "reference", "--out", tmp_path / "judged"], capsys
    )
    assert code == 0, err
    assert "against 4 normal subjects' biceps brachii units" in out
    rows = (tmp_path / "judged" / "p_units.csv").read_text().splitlines()
    header = rows[0].split(",")
    amplitude = header.index("amplitude_uv_vs_normal")
    assert [r.split(",")[amplitude] for r in rows[1:]] == ["high", "high"]
    summary = __import__("json").loads((tmp_path / "judged" / "p_summary.json").read_text())
    assert summary["normal_range"]["subjects"] == ["S0", "S1", "S2", "S3"]
    # a normal subject judged against the same folder is left out of its own range
    code, out, _ = run_main(emg_muap, [lab / "n0.hea", "--normal-from", tmp_path / "reference", "--out",
                                       tmp_path / "self"], capsys)  # fmt: skip
    assert code == 0 and "against 3 normal subjects'" in out
    code, _, err = run_main(emg_muap, [patient, "--normal-from", lab, "--out", tmp_path / "x"], capsys)
    assert code == 2 and "holds no records.csv" in err


@pytest.mark.skipif(
    not (SHARED / "emglab-n2001-decomposition").is_dir() or not (SHARED / "emglab-n2001-bb").is_dir(),
    reason="real-data test: ../shared/data/emglab-n2001-bb and emglab-n2001-decomposition are not here",
)
def test_a_real_record_against_its_experts_decomposition(tmp_path, capsys):
    # N2001C01BB55: a control's low-level record with 3 regularly firing units in the expert's annotation
    args = [SHARED / "emglab-n2001-bb" / "N2001C01BB55.hea",
            "--reference", SHARED / "emglab-n2001-decomposition" / "N2001C01BB55.eaf", "--out", tmp_path]  # fmt: skip
    code, out, err = run_main(emg_muap, args, capsys)
    assert code == 0, err
    report = __import__("json").loads((tmp_path / "N2001C01BB55_agreement.json").read_text())
    assert report["regular_units"] == 3 and report["regular_found"] >= 2
    assert report["precision"] >= 0.9 and report["recall"] >= 0.85
    # the reference of another record of the same person is refused by content
    args[2] = SHARED / "emglab-n2001-decomposition" / "N2001C01BB51.eaf"
    code, _, err = run_main(emg_muap, args, capsys)
    assert code == 2 and "does not describe this record" in err
