"""Every console script tried the way an outsider would: damaged files, odd headers, folders of the wrong kind,
nonsense settings, SIGTERM and Ctrl-C. Each case must end in one clear line (``error: ...``, exit 2, no traceback;
130 / 143 for a signal, with a line that says what to do) or an honest result (exit 0, saying any assumption).
Writes a markdown table and exits 1 if any case fails.

    python experiments/scripts/outsider_battery.py --out experiments/outsider-battery.md   # about 10 min on 2 cores
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import wfdb

REPO = Path(__file__).resolve().parents[2]
TINY = [
    "data.synthetic.subjects_per_class={normal:2,als:2,myopathy:2}",
    "data.synthetic.records_per_subject=[2,2]",
    "data.synthetic.duration_s=3.0",
    "data.sample_rate=2343.75",
    "logger=none",
    "print_config=false",
]


def command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", f"emg_lightning.cli.{module}", *map(str, args)]


def run(cmd: list[str], cwd: Path, timeout: int = 600, stop_after: float | None = None, sig: int = signal.SIGTERM):
    env = {**os.environ, "WANDB_MODE": "disabled", "EMG_CACHE_DIR": str(cwd / "cache")}
    if stop_after is None:
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        return done.returncode, done.stdout, done.stderr
    # a background parent may ignore SIGINT, and a child would inherit that: restore Ctrl-C's default in the child
    process = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    time.sleep(stop_after)
    process.send_signal(sig)
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def write_record(folder: Path, name: str, fs: float = 4000.0, seconds: float = 3.0, unit: str = "uV", seed: int = 0,
                 gain: float = 10.0, flat: bool = False, channels: int = 1) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    d = np.zeros((int(fs * seconds), channels), np.int16) if flat else (
        np.round(rng.standard_normal((int(fs * seconds), channels)) * 400).astype(np.int16)
    )  # fmt: skip
    names = [f"emg{i}" for i in range(channels)]
    wfdb.wrsamp(name, fs=fs, units=[unit] * channels, sig_name=names, d_signal=d, fmt=["16"] * channels,
                adc_gain=[gain] * channels, baseline=[0] * channels, write_dir=str(folder))  # fmt: skip


def prepare(root: Path) -> dict[str, Path]:
    """A trained run, a finished CV, folders of records (good, damaged, odd headers) and a few wrong-kind paths."""
    folders = ("records", "damaged", "gain0", "nounit", "two", "slow", "flat", "empty")
    paths = {k: root / k for k in ("run", "cv", *folders)}
    for key in folders:
        paths[key].mkdir()
    for i, name in enumerate(("A1_0", "B2_0", "C3_0")):
        write_record(paths["records"], name, seed=i)
    write_record(paths["flat"], "F9_0", fs=12000.0, flat=True)  # fast enough for motor units: refused as flat
    write_record(paths["damaged"], "A1_0")
    data = paths["damaged"] / "A1_0.dat"
    data.write_bytes(data.read_bytes()[:1001])  # truncated mid-sample
    write_record(paths["gain0"], "A1_0")
    header = paths["gain0"] / "A1_0.hea"
    header.write_text(re.sub(r"10(\.0)?(\(0\))?/uV", "0/uV", header.read_text()))
    write_record(paths["nounit"], "A1_0")
    header = paths["nounit"] / "A1_0.hea"
    header.write_text(re.sub(r"(10(\.0)?(\(0\))?)/uV", r"\1", header.read_text()))
    write_record(paths["two"], "A1_0", channels=2)
    write_record(paths["slow"], "S1_0", fs=2000.0, seconds=10.0)
    (root / "a_file.txt").write_text("not a folder\n")
    (root / "bad_manifest.csv").write_text("name,diagnosis\nA1_0,als\n")
    rc, _, err = run(command("train", *TINY, "model=qemg", f"hydra.run.dir={paths['run']}"), root)
    assert rc == 0, err[-3000:]
    four = "data.synthetic.subjects_per_class={normal:4,als:4,myopathy:4}"  # two folds keep a validation subject
    cv = [*TINY, four, "model=qemg", "split=group_kfold", "split.k=2", f"cv_dir={paths['cv']}"]
    rc, _, err = run(command("cv", *cv), root)
    assert rc == 0, err[-3000:]
    unfinished = root / "unfinished"
    shutil.copytree(paths["run"], unfinished)
    for marker in ("fit_finished.json", "metrics.json"):
        (unfinished / marker).unlink(missing_ok=True)
    paths["unfinished"] = unfinished
    return paths


def cases(p: dict[str, Path], root: Path) -> list[tuple[str, list[str], str, dict]]:
    """(what, command, expected: refuse | result | signal, options). A refusal names the words its line must hold
    (``says``): a case refused for another reason than the one it tries fails. Each training case writes into a
    folder of its own, unless it tries what a second command finds in the same folder."""
    folders = iter(range(1000))

    def train(*extra: str) -> list[str]:
        return command("train", *TINY, f"hydra.run.dir={root / f'out{next(folders)}'}", *extra)

    wfdb_data = ["data=wfdb", "data.pattern='(?P<label>[A-Z])(?P<subject>\\d+)_\\d+'", "logger=none",
                 "print_config=false"]  # fmt: skip

    def wfdb_train(data_root: Path) -> list[str]:
        return command("train", *wfdb_data, f"hydra.run.dir={root / f'out{next(folders)}'}", f"data.root={data_root}")

    refused_then_fixed = [*TINY, "trainer=ddp_cpu", "trainer.max_epochs=1", f"hydra.run.dir={root / 'ddp'}"]
    long_run = [*TINY, "trainer.max_epochs=200", "callbacks.early_stopping.patience=1000"]
    return [
        ("train: trainer.max_epochs=0", train("trainer.max_epochs=0"), "refuse", {"says": "trains nothing"}),
        ("train: data.window_s=-1", train("data.window_s=-1"), "refuse", {"says": "data.window_s must be positive"}),
        (
            "train: data.synthetic.subjects_per_class=normal:2 (a string, not a mapping)",
            train("data.synthetic.subjects_per_class=normal:2"),
            "refuse",
            {"says": "must map classes to counts"},
        ),
        (
            "train: split=loso split.k=5 (a key loso does not have)",
            train("split.k=5"),
            "refuse",
            {"hydra": "Could not override 'split.k'"},
        ),  # fmt: skip
        ("train: data.batch_size=0", train("data.batch_size=0"), "refuse", {"says": "data.batch_size must be >= 1"}),
        ("train: seed=abc", train("seed=abc"), "refuse", {"says": "seed='abc' must be an integer"}),
        (
            "train: label_smoothing.epsilon=2",
            train("label_smoothing=fixed", "label_smoothing.epsilon=2"),
            "refuse",
            {"says": "label_smoothing.epsilon=2 must be in [0, 1)"},
        ),  # fmt: skip
        ("train: data.classes=[nope]", train("data.classes=[nope]"), "refuse", {"says": "two or more classes"}),
        ("train: data.fold=99", train("data.fold=99"), "refuse", {"says": "data.fold=99 is out of range"}),
        (
            "train: model=nonexistent",
            train("model=nonexistent"),
            "refuse",
            {"hydra": "Could not find 'model/nonexistent'"},
        ),  # fmt: skip
        (
            "train: trainer.use_distributed_sampler=true",
            train("trainer.use_distributed_sampler=true"),
            "refuse",
            {"says": "would pad each process's share"},
        ),  # fmt: skip
        (
            "train: two processes, one training batch",
            command("train", *refused_then_fixed),
            "refuse",
            {"says": "each process needs at least one"},
        ),  # fmt: skip
        (
            "train: the refusal's fix (data.batch_size=4) in the same folder",
            command("train", *refused_then_fixed, "data.batch_size=4"),
            "result",
            {"says": "starting afresh"},
        ),  # fmt: skip
        ("train: data.root does not exist", wfdb_train(root / "nope"), "refuse", {"says": "does not exist"}),
        ("train: a truncated .dat", wfdb_train(p["damaged"]), "refuse", {"says": "the file may be truncated"}),
        ("train: gain 0 in a header", wfdb_train(p["gain0"]), "refuse", {"says": "gives gain 0"}),
        (
            "train: a two-signal record without data.channel",
            wfdb_train(p["two"]),
            "refuse",
            {"says": "the record has 2 signals"},
        ),  # fmt: skip
        (
            "train: SIGTERM during training",
            command("train", *long_run, f"hydra.run.dir={root / 'stopped'}"),
            "signal",
            {"stop_after": 25.0, "code": 143},
        ),  # fmt: skip
        (
            "train: Ctrl-C during training",
            command("train", *long_run, f"hydra.run.dir={root / 'interrupted'}"),
            "signal",
            {"stop_after": 20.0, "code": 130, "sig": signal.SIGINT},
        ),  # fmt: skip
        (
            "data: an empty folder",
            command("data", *wfdb_data, f"data.root={p['empty']}"),
            "refuse",
            {"says": "holds no .hea header files"},
        ),  # fmt: skip
        (
            "cv: split=nonsense",
            command("cv", *TINY, "split=nonsense", f"cv_dir={root / 'cv2'}"),
            "refuse",
            {"says": "Could not find 'split/nonsense'"},
        ),  # fmt: skip
        (
            "cv-report: a folder that does not exist",
            command("report", root / "nope"),
            "refuse",
            {"says": "does not exist"},
        ),
        ("cv-report: an empty folder", command("report", p["empty"]), "refuse", {"says": "no finished fold"}),
        ("cv-report: a file", command("report", root / "a_file.txt"), "refuse", {"says": "is a file, not a CV folder"}),
        ("compare: a CV with itself", command("compare", p["cv"], p["cv"]), "refuse", {"says": "is given twice"}),
        (
            "compare: a CV with a missing folder",
            command("compare", p["cv"], root / "nope"),
            "refuse",
            {"says": "does not exist"},
        ),  # fmt: skip
        (
            "compare: a run folder with a CV",
            command("compare", p["run"], p["cv"]),
            "refuse",
            {"says": "differ in split"},
        ),
        ("ensemble: one folder", command("ensemble", p["cv"], "--out", root / "ens"), "refuse", {"argparse": True}),
        (
            "predict: a model that does not exist",
            command("predict", root / "nope", p["records"]),
            "refuse",
            {"says": "does not exist"},
        ),  # fmt: skip
        (
            "predict: an unfinished run",
            command("predict", p["unfinished"], p["records"]),
            "refuse",
            {"says": "did not finish training"},
        ),  # fmt: skip
        (
            "predict: a folder with no record",
            command("predict", p["run"], p["empty"]),
            "refuse",
            {"says": "holds no .hea header files"},
        ),  # fmt: skip
        (
            "predict: a truncated record",
            command("predict", p["run"], p["damaged"]),
            "refuse",
            {"says": "the file may be truncated"},
        ),  # fmt: skip
        (
            "predict: --out the model's own folder",
            command("predict", p["run"], p["records"], "--out", p["run"]),
            "refuse",
            {"says": "is a run folder"},
        ),  # fmt: skip
        (
            "predict: --out an existing file",
            command("predict", p["run"], p["records"], "--out", root / "a_file.txt"),
            "refuse",
            {"says": "is a file"},
        ),  # fmt: skip
        (
            "predict: --channel 5 of a one-signal record",
            command("predict", p["run"], p["records"], "--channel", "5"),
            "refuse",
            {"says": "data.channel=5 but the record has 1 signal"},
        ),  # fmt: skip
        (
            "predict: a header without a unit",
            command("predict", p["run"], p["nounit"], "--out", root / "p1"),
            "result",
            {"says": "give no unit"},
        ),  # fmt: skip
        (
            "eval: a manifest that does not exist",
            command("evaluate", p["run"], p["records"], "--out", root / "e1", "--manifest", root / "nope.csv"),
            "refuse",
            {"says": "cannot be read"},
        ),  # fmt: skip
        (
            "eval: a manifest without its columns",
            command("evaluate", p["run"], p["records"], "--out", root / "e2", "--manifest", root / "bad_manifest.csv"),
            "refuse",
            {"says": "needs a header row with the columns record, subject, label"},
        ),  # fmt: skip
        ("export: a model that does not exist", command("export", root / "nope"), "refuse", {"says": "does not exist"}),
        (
            "export: an unfinished run",
            command("export", p["unfinished"], "--out", root / "x1"),
            "refuse",
            {"says": "did not finish training"},
        ),  # fmt: skip
        (
            "explain: --windows abc",
            command("explain", p["run"], p["records"] / "A1_0.hea", "--windows", "abc"),
            "refuse",
            {"says": "--windows abc must be window numbers"},
        ),  # fmt: skip
        (
            "muap: a flat record",
            command("muap", p["flat"] / "F9_0.hea", "--out", root / "m1"),
            "refuse",
            {"says": "the signal is flat"},
        ),  # fmt: skip
        (
            "muap: a record under 11 kHz",
            command("muap", p["slow"] / "S1_0.hea", "--out", root / "m2"),
            "refuse",
            {"says": "needs at least 11000 Hz"},
        ),  # fmt: skip
        (
            "muap: a record that does not exist",
            command("muap", root / "nope.hea", "--out", root / "m3"),
            "refuse",
            {"says": "neither a folder of WFDB records nor a record"},
        ),  # fmt: skip
        ("bench: an unknown option", command("bench", "--nonsense"), "refuse", {"code": 2, "argparse": True}),
    ]


def verdict(expected: str, options: dict, rc: int, err: str) -> tuple[bool, str]:
    lines = [line for line in err.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    if "Traceback" in err:
        return False, "traceback"
    if expected == "refuse":
        if options.get("hydra"):  # Hydra refuses an unknown key while composing, before any command code runs
            said = [line for line in lines if options["hydra"] in line]
            return rc == 1 and bool(said), " ".join(lines[:2])
        if options.get("argparse"):
            return rc == 2 and "error:" in err, last
        errors = [line for line in lines if line.startswith("error:")]
        return rc == 2 and len(errors) == 1 and options["says"] in errors[0], errors[0] if errors else last
    if expected == "signal":
        return rc == options["code"] and bool(last), last
    said = [line for line in lines if options["says"] in line]
    return rc == 0 and bool(said), said[0] if said else last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="emg-battery-"))
    try:
        paths = prepare(root)
        rows, failed = [], 0
        for what, cmd, expected, options in cases(paths, root):
            rc, _, err = run(cmd, root, stop_after=options.get("stop_after"), sig=options.get("sig", signal.SIGTERM))
            ok, line = verdict(expected, options, rc, err)
            failed += not ok
            shown = line.replace("|", "\\|").replace(str(root), "<tmp>")[:220]
            rows.append(f"| {what} | {expected} | {rc} | {'ok' if ok else '**FAILED**'} | {shown} |")
            print(("ok    " if ok else "FAIL  ") + what, flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    table = ["| case | expected | exit | verdict | the line the user sees |", "|---|---|---|---|---|", *rows]
    args.out.write_text(
        f"# Outsider battery ({len(rows)} cases, {failed} failed)\n\n"
        "`python experiments/scripts/outsider_battery.py --out experiments/outsider-battery.md`: every console "
        "script tried with damaged files, odd headers, folders of the wrong kind, nonsense settings and signals.\n\n"
        + "\n".join(table)
        + "\n"
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
