"""Probe: what narrows the gap between the two clinics? The qEMG baseline (its features at 4,687.5 Hz, its L2
logistic regression with the strength chosen by its own subject-grouped inner CV: 5 folds, 3 draws, seed 0) fitted
on every subject of one clinic and scored on the other, biceps only (N2001 holds only biceps), classes normal /
neuropathy / myopathy (N2001's `als` renamed `neuropathy`: a stated choice). Four ways to put the clinics on one
scale, each labelled for what it uses:

- `training clinic`: features standardised with the training clinic's statistics (what emg-eval does);
- `own recordings (transductive)`: each clinic's features standardised on all of its own recordings, labels unseen;
- `own normal subjects`: each clinic standardised on the windows of normal subjects (a laboratory's reference
  values); in the clinic scored, a random half of its normal subjects (seed 0) serves as the reference and is left
  out of the scoring;
- `per-record amplitude`: every record rescaled to an RMS of 100 uV before the features are computed (removes the
  amplitude differences between the clinics' amplifiers, and the amplitude cue of neurogenic disorders with them).

Levels: window, record (mean of its windows' probabilities), subject (mean of its records'); accuracy and balanced
accuracy, no intervals (a probe; the committed evaluations in experiments/cross_clinic/ carry them).

Run: EMGLAB_DIR=... ALGIERS_DIR=.../algiers-iemg python experiments/scripts/cross_clinic_normalisation.py
(about 2 minutes once the windows are cached). Writes experiments/cross_clinic/normalisation.md and .json.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir

from emg_lightning.config import build_datamodule
from emg_lightning.data.splits import inner_fold_draws
from emg_lightning.features.qemg import qemg_features
from emg_lightning.models.linear import FeatureLinear, balanced_accuracy, fit_feature_linear

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ["normal", "neuropathy", "myopathy"]
TARGET_RMS_UV = 100.0


@dataclass
class Clinic:
    name: str
    x: np.ndarray  # qEMG features per window
    y: np.ndarray
    subject: np.ndarray
    record: np.ndarray
    windows_uv: np.ndarray
    sample_rate: float


def load(name: str, overrides: list[str]) -> tuple[Clinic, dict]:
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        cfg = compose("train", overrides=[*overrides, f"data.classes=[{','.join(CLASSES)}]", "data.sample_rate=4687.5"])
    datamodule = build_datamodule(cfg)
    datamodule.setup()
    table, columns = datamodule.table, datamodule.table.columns
    keep = np.isin(columns["label"], CLASSES)
    clinic = Clinic(
        name,
        np.asarray(datamodule.feature_table, dtype=np.float64)[keep],
        np.array([CLASSES.index(label) for label in columns["label"][keep]]),
        columns["subject"][keep],
        columns["record"][keep],
        np.asarray(table.windows[np.flatnonzero(keep)], dtype=np.float64) / table.adc_gain,
        float(table.sample_rate),
    )
    settings = {k: cfg.model[k] for k in ("l2_grid", "inner_folds", "inner_repeats", "inner_score")}
    return clinic, settings


def per_record_amplitude(clinic: Clinic) -> np.ndarray:
    """qEMG features of the windows after rescaling each record to an RMS of 100 uV."""
    scaled = clinic.windows_uv.copy()
    for record in np.unique(clinic.record):
        rows = clinic.record == record
        scaled[rows] *= TARGET_RMS_UV / np.sqrt(np.mean(scaled[rows] ** 2))
    return np.concatenate([qemg_features(scaled[i : i + 256], clinic.sample_rate) for i in range(0, len(scaled), 256)])


def zscore(x: np.ndarray, reference: np.ndarray) -> np.ndarray:
    mean, std = x[reference].mean(axis=0), x[reference].std(axis=0)
    return (x - mean) / np.where(std > 0, std, 1.0)


def reference_normals(clinic: Clinic, seed: int = 0) -> np.ndarray:
    """Rows of a random half of the clinic's normal subjects (its reference values)."""
    normals = sorted(set(clinic.subject[clinic.y == CLASSES.index("normal")]))
    chosen = np.random.default_rng(seed).choice(normals, size=len(normals) // 2, replace=False)
    return np.isin(clinic.subject, chosen)


def fit(x: np.ndarray, clinic: Clinic, settings: dict) -> FeatureLinear:
    labels = {s: CLASSES[c] for s, c in zip(clinic.subject, clinic.y)}
    draws = inner_fold_draws(clinic.subject, labels, settings["inner_folds"], settings["inner_repeats"], seed=0)
    net = FeatureLinear(num_classes=len(CLASSES), in_features=x.shape[1])
    fit_feature_linear(net, x, clinic.y, draws, list(settings["l2_grid"]), settings["inner_score"])
    return net


def scores(net: FeatureLinear, x: np.ndarray, clinic: Clinic, rows: np.ndarray) -> dict[str, float]:
    with torch.no_grad():
        p = torch.softmax(net(torch.from_numpy(x[rows]).float()), dim=1).numpy()
    y, record, subject = clinic.y[rows], clinic.record[rows], clinic.subject[rows]
    out = {"window_acc": float(np.mean(p.argmax(1) == y)), "window_bal_acc": balanced_accuracy(y, p.argmax(1))}
    records = sorted(set(record))
    record_p = {r: p[record == r].mean(axis=0) for r in records}
    record_y = {r: y[record == r][0] for r in records}
    predicted = np.array([record_p[r].argmax() for r in records])
    truth = np.array([record_y[r] for r in records])
    out |= {"record_acc": float(np.mean(predicted == truth)), "record_bal_acc": balanced_accuracy(truth, predicted)}
    subjects = sorted(set(subject))
    subject_p = {s: np.mean([record_p[r] for r in records if subject[record == r][0] == s], axis=0) for s in subjects}
    predicted = np.array([subject_p[s].argmax() for s in subjects])
    truth = np.array([y[subject == s][0] for s in subjects])
    out |= {"subject_acc": float(np.mean(predicted == truth)), "subject_bal_acc": balanced_accuracy(truth, predicted)}
    out |= {"subjects": len(subjects), "records": len(records), "windows": int(rows.sum())}
    return out


def main() -> None:
    n2001, settings = load(
        "N2001", ["experiment=qemg_loso", f"data.root={os.environ['EMGLAB_DIR']}", "data.label_map={als: neuropathy}"]
    )
    algiers, _ = load(
        "Algiers biceps",
        [
            "experiment=algiers_qemg_kfold10",
            f"data.root={Path(os.environ['ALGIERS_DIR']) / 'records'}",
            "data.muscles=[biceps brachii]",
        ],
    )
    amplitude = {c.name: per_record_amplitude(c) for c in (n2001, algiers)}
    results = []
    for source, target in ((n2001, algiers), (algiers, n2001)):
        everything = np.ones(len(target.y), dtype=bool)
        reference = reference_normals(target)
        variants = {
            "training clinic": (source.x, target.x, everything),
            "own recordings (transductive)": (
                zscore(source.x, np.ones(len(source.y), bool)),
                zscore(target.x, everything),
                everything,
            ),
            "own normal subjects": (
                zscore(source.x, source.y == CLASSES.index("normal")),
                zscore(target.x, reference),
                ~reference,
            ),
            "per-record amplitude": (amplitude[source.name], amplitude[target.name], everything),
        }
        for variant, (x_source, x_target, scored) in variants.items():
            net = fit(x_source, source, settings)
            results.append(
                {"train": source.name, "test": target.name, "variant": variant, **scores(net, x_target, target, scored)}
            )
            print(results[-1], flush=True)
    out = ROOT / "experiments" / "cross_clinic"
    out.mkdir(parents=True, exist_ok=True)
    (out / "normalisation.json").write_text(json.dumps(results, indent=1))
    lines = [
        "# What narrows the gap between the clinics (probe)",
        "",
        "qEMG baseline fitted on every subject of one clinic, scored on the other; biceps only; classes normal /",
        "neuropathy (N2001: als) / myopathy; `python experiments/scripts/cross_clinic_normalisation.py` (see its",
        "docstring for each variant). No intervals: a probe.",
        "",
        "| train -> test | scale | subjects | subject bal_acc | subject acc | record bal_acc | window bal_acc |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['train']} -> {r['test']} | {r['variant']} | {r['subjects']} | {r['subject_bal_acc']:.3f} | "
        f"{r['subject_acc']:.3f} | {r['record_bal_acc']:.3f} | {r['window_bal_acc']:.3f} |"
        for r in results
    ]
    (out / "normalisation.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
