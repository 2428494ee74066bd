"""Trained models on recordings nobody trained on (the library behind emg-predict and emg-eval).

A model is a run folder (one fold of emg-cv, an emg-train run, or a final ``split=all`` model) or a CV folder (the
ensemble of its fold models: the mean of their probabilities). Every preprocessing step comes from the model's own
run: its ``model_input.json`` (rate, window, unit, normalization, feature set, classes) and ``config.yaml`` (hop,
band-pass, trims, quality rules). A recording at another rate is resampled to the model's (anti-aliased), never up;
physical units come from its header.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from torch import nn

from emg_lightning.classifier import EMGClassifier
from emg_lightning.data.cache import WindowTable
from emg_lightning.data.feature_cache import OneRecordFeatures, feature_matrix
from emg_lightning.data.records import Recording
from emg_lightning.data.windows import QualityRules, RecordWindows, WindowSettings, window_record
from emg_lightning.features import describes_records
from emg_lightning.models.mil import record_weights
from emg_lightning.run_files.predictions import WHOLE_RECORD, prediction_lines
from emg_lightning.runs import FIT_FINISHED, MODEL_INPUT
from emg_lightning.runtime.errors import ConfigError, DataError
from emg_lightning.runtime.files import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

DROP_REASONS = ("flat", "saturated", "trimmed", "short")


@dataclass
class TrainedModel:
    """One or more classifiers that read the same input; their probabilities are averaged."""

    name: str
    classifiers: list[EMGClassifier]
    runs: list[Path]
    classes: list[str]
    sample_rate: float
    window_samples: int
    windows: WindowSettings  # with the model's rate: records at other rates are resampled to it
    normalization: str
    features: str | None
    training_data: dict = field(default_factory=dict)  # source, label_map, muscles, native rates (newer runs)
    location: Path | None = None  # the folder given: a run, or the CV folder whose fold models these are

    @property
    def pools_records(self) -> bool:
        """A record-level model: a record's probability is the attention-weighted mean of its windows'."""
        return getattr(self.classifiers[0].net, "pools_records", False)

    @property
    def kind(self) -> str:
        return "run" if len(self.runs) == 1 else f"ensemble of {len(self.runs)} fold models (mean of probabilities)"


class ProbabilityGraph(nn.Module):
    """What is exported: the model's classifiers (one, or a CV folder's folds averaged) from input to
    probabilities, with per-window z-scoring first when the model was trained with it."""

    def __init__(self, model: TrainedModel) -> None:
        super().__init__()
        self.classifiers = nn.ModuleList(model.classifiers)
        self.zscore = model.normalization == "zscore" and model.features is None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.zscore:
            x = (x - x.mean(dim=-1, keepdim=True)) / (x.std(dim=-1, keepdim=True, unbiased=False) + 1e-6)
        probabilities = [torch.softmax(classifier(x), dim=-1) for classifier in self.classifiers]
        return torch.stack(probabilities).mean(dim=0)


@dataclass
class RecordPrediction:
    record: Recording
    path: Path
    window_index: np.ndarray
    start_s: np.ndarray
    probabilities: np.ndarray  # (windows, classes)
    dropped: Counter = field(default_factory=Counter)
    weights: np.ndarray | None = None  # a record-level model's share of each window in the record (sums to 1)

    @property
    def mean(self) -> np.ndarray:
        """The record's probabilities: the mean of its windows', weighted by a record-level model's attention."""
        if self.weights is None:
            return self.probabilities.mean(axis=0)
        return self.weights @ self.probabilities


# What marks a folder as a run (emg-train, an emg-cv fold): outputs must never land in one. Not metrics.json alone:
# emg-eval writes one into its own output folder, which a rerun may overwrite
RUN_FOLDER_FILES = ("config.yaml", "fit_finished.json", MODEL_INPUT, "checkpoints")


def check_output_folder(out: str | Path) -> Path:
    """``--out`` of a command that writes predictions or reports, refused before any work when writing there would
    overwrite what the commands read: an existing file, a run folder or a CV folder (or one of its folds). A new
    folder, an empty one, or one this kind of command wrote before is fine."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file: give a folder (a new one, or one this command wrote before)")
    if out.is_dir():
        found = next((name for name in RUN_FOLDER_FILES if (out / name).exists()), None)
        if found:
            raise DataError(
                f"--out {out} is a run folder (it holds {found}): writing there would replace the run's own "
                f"results; choose another folder"
            )
        if (out / "cv_plan.json").exists() or next(out.glob("seed_*/fold_*"), None) is not None:
            raise DataError(f"--out {out} is a cross-validation folder: choose another folder")
    return out


def load_model(path: str | Path) -> TrainedModel:
    """A run folder or a CV folder (every finished fold model), refused with one line when it is neither."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"model {path} does not exist: give a run folder (emg-train / one emg-cv fold) or a CV folder")
    if (path / "config.yaml").is_file():
        runs = [path]
    else:
        runs = sorted(p.parent for p in path.glob("seed_*/fold_*/config.yaml") if _weights(p.parent, quiet=True))
        _check_planned_folds(path, runs)
    if not runs:
        raise DataError(
            f"{path} holds no trained model: a run folder has config.yaml and checkpoints/, a CV folder has "
            f"seed_*/fold_*/ run folders"
        )
    unfinished = [run for run in runs if not ((run / FIT_FINISHED).is_file() or (run / "metrics.json").is_file())]
    if unfinished:
        raise DataError(
            f"{unfinished[0]} did not finish training (no {FIT_FINISHED}: its last.ckpt is from the middle of a "
            f"fit); run its emg-train / emg-cv command again to finish it"
        )
    contracts = [_contract(run) for run in runs]
    first = contracts[0]
    for run, contract in zip(runs[1:], contracts[1:]):
        differ = sorted(k for k in first if k not in ("windows", "training_data") and contract[k] != first[k])
        if differ or contract["windows"] != first["windows"]:
            raise DataError(
                f"{run} and {runs[0]} read different inputs ({', '.join(differ or ['window settings'])}): one "
                f"ensemble needs one preprocessing"
            )
    classifiers = []
    for run in runs:
        model = EMGClassifier.load_from_checkpoint(_weights(run), map_location="cpu", weights_only=True)
        classifiers.append(model.eval())
    return TrainedModel(name=path.resolve().name, classifiers=classifiers, runs=runs, location=path.resolve(), **first)


def _check_planned_folds(cv_dir: Path, runs: list[Path]) -> None:
    """A CV folder is one model only when every fold its plan lists is there: a partial one would average fewer
    models than its report describes."""
    plan = cv_dir / "cv_plan.json"
    if not plan.is_file():
        return
    try:
        planned = json.loads(plan.read_text())
        expected = {f"seed_{s}/fold_{f:02d}" for s in planned["seeds"] for f in planned["folds"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{plan} is damaged ({exc}): run emg-cv again on that folder to rewrite it") from None
    missing = sorted(expected - {f"{run.parent.name}/{run.name}" for run in runs})
    if missing:
        raise DataError(
            f"{cv_dir} is a partial cross-validation: {len(missing)} planned fold model(s) are missing "
            f"({', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}); finish it with the same emg-cv command"
        )


def _weights(run: Path, quiet: bool = False) -> Path | None:
    """The weights the run tested with (best or last, as its config says), else its last checkpoint."""
    fitted = run / FIT_FINISHED
    chosen = None
    if fitted.is_file():
        best = json.loads(fitted.read_text()).get("best_checkpoint")
        config = OmegaConf.load(run / "config.yaml") if (run / "config.yaml").is_file() else {}
        if best and config.get("test_weights", "best") == "best":
            chosen = run / "checkpoints" / Path(best).name  # by name: the folder may have moved since
    chosen = chosen if chosen is not None and chosen.is_file() else run / "checkpoints" / "last.ckpt"
    if chosen.is_file():
        return chosen
    if quiet:
        return None
    raise DataError(f"{run} has no trained weights (checkpoints/last.ckpt): finish that run first")


def _contract(run: Path) -> dict:
    """The model's input, from model_input.json and config.yaml."""
    config = OmegaConf.to_container(OmegaConf.load(run / "config.yaml"), resolve=False)
    data = config.get("data") or {}
    info_path = run / MODEL_INPUT
    if not info_path.is_file():
        raise DataError(
            f"{run} has no {MODEL_INPUT} (runs before it existed do not record their input rate): retrain it, or "
            f"run the same command again into a new folder"
        )
    info = json.loads(info_path.read_text())
    if info["normalization"] == "robust":
        raise DataError(
            f"{run} was trained with data.normalization=robust, whose scale is fitted on its training subjects and "
            f"not stored: emg-predict supports none and zscore"
        )
    rate = float(info["sample_rate_hz"])
    bandpass = data.get("bandpass_hz")
    windows = WindowSettings(
        window_s=float(info["window_s"]),
        hop_s=data.get("hop_s"),
        sample_rate=rate,
        trim_after_s=dict(data.get("trim_after_s") or {}),
        bandpass_hz=tuple(bandpass) if bandpass else None,
        quality=QualityRules(
            min_std_uv=data.get("min_std_uv", 1.0), max_saturated_fraction=data.get("max_saturated_fraction", 0.05)
        ),
    )
    return {
        "classes": list(info["classes"]),
        "sample_rate": rate,
        "window_samples": int(info["window_samples"]),
        "windows": windows,
        "normalization": info["normalization"],
        "features": info["features"],
        "training_data": dict(info.get("training_data") or {}),
    }


def record_windows(model: TrainedModel, record: Recording, path: Path) -> tuple[RecordWindows, np.ndarray]:
    """``record`` windowed as the model's training data were (resampled to its rate, band-passed, quality rules),
    and the kept windows in microvolts; refused below the model's rate (up-sampling would invent bandwidth)."""
    rate = record.sample_rate
    if rate < model.sample_rate:
        raise DataError(
            f"{path}: recorded at {rate:g} Hz, below the model's {model.sample_rate:g} Hz: up-sampling would "
            f"invent the missing bandwidth; use a model trained at {rate:g} Hz or less"
        )
    try:
        result = window_record(record, model.windows)
    except ConfigError as exc:
        raise DataError(f"{path}: cannot be windowed as the model's training data were ({exc})") from None
    return result, result.windows.astype(np.float32) / np.float32(record.adc_gain)


def predict_record(model: TrainedModel, record: Recording, path: Path, batch_size: int = 64) -> RecordPrediction:
    """Window ``record`` as the model's training did and average the model's probabilities per window."""
    result, uv = record_windows(model, record, path)
    if len(result.windows) == 0 and not result.dropped:
        raise DataError(
            f"{path}: {record.duration_s:.2f} s long, shorter than the model's {model.windows.window_s:g}-s window"
        )
    probabilities, weights = np.empty((0, len(model.classes))), None
    if len(uv):
        x = _model_input(model, uv, record)
        probabilities = _probabilities(model, x, batch_size)
        weights = _record_weights(model, x) if model.pools_records else None
    return RecordPrediction(
        record,
        path,
        result.window_index,
        result.start_sample / record.sample_rate,
        probabilities,
        result.dropped,
        weights,
    )


def _model_input(model: TrainedModel, uv: np.ndarray, record: Recording) -> np.ndarray:
    """What the network reads: the windows (windows, 1, samples), or their feature vectors (a record set's from the
    whole record at its native rate)."""
    if model.features is None:
        return uv[:, None, :]
    # the same extractors and code path as training, on an in-memory table of this record's windows
    table = WindowTable(uv, {"record": np.full(len(uv), record.name)}, 1.0, model.sample_rate, {}, None)
    return np.asarray(feature_matrix(table, model.features, OneRecordFeatures(record)), dtype=np.float32)


def _record_weights(model: TrainedModel, x: np.ndarray) -> np.ndarray:
    """A record-level model's attention over all the record's windows (one bag), averaged over its fold models."""
    with torch.no_grad():
        inputs = torch.from_numpy(np.ascontiguousarray(x))
        everyone = torch.zeros(len(x), dtype=torch.int64)
        weights = [record_weights(c.net.forward_with_attention(inputs)[1], everyone) for c in model.classifiers]
    return torch.stack(weights).mean(dim=0).numpy().astype(np.float64)


def _probabilities(model: TrainedModel, x: np.ndarray, batch_size: int) -> np.ndarray:
    graph = ProbabilityGraph(model).eval()
    with torch.no_grad():
        probabilities = np.concatenate(
            [
                graph(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size]))).numpy()
                for i in range(0, len(x), batch_size)
            ]
        ).astype(np.float64)
    if not np.isfinite(probabilities).all():
        raise DataError("the model produced non-finite probabilities: its weights are damaged; retrain it")
    return probabilities


def window_rows(
    predictions: list[RecordPrediction], classes: list[str], labelled: bool, whole_records: bool = False
) -> list[str]:
    """predictions.csv: one row per window (with a record-level model's ``weight``); with labels in emg-cv's
    format (emg-cv-report reads it), else with each window's start in seconds. ``whole_records`` (a model of record
    features): labelled rows are one per record, ``window`` -1, as emg-cv writes them."""
    weighted = any(p.weights is not None for p in predictions)
    if labelled and whole_records:
        rows = (  # features of whole records: one prediction per record (no window level)
            {
                "fold": 0,
                "seed": 0,
                "subject": p.record.subject,
                "record": p.record.name,
                "window": WHOLE_RECORD,
                "label": p.record.label,
                "probabilities": p.mean,
            }
            for p in predictions
            if len(p.probabilities)
        )
        return prediction_lines(rows, classes)
    if labelled:
        rows = (
            {
                "fold": 0,
                "seed": 0,
                "subject": p.record.subject,
                "record": p.record.name,
                "window": int(p.window_index[k]),
                "label": p.record.label,
                "probabilities": probabilities,
                **({"weight": p.weights[k]} if weighted else {}),
            }
            for p in predictions
            for k, probabilities in enumerate(p.probabilities)
        )
        return prediction_lines(rows, classes)
    head = ["subject", "record", "window", "start_s", "predicted", *(f"p_{c}" for c in classes)]
    lines = [",".join(head + (["weight"] if weighted else []))]
    for p in predictions:
        for k, probabilities in enumerate(p.probabilities):
            fields = [p.record.subject, p.record.name, str(int(p.window_index[k])), f"{p.start_s[k]:.4f}"]
            fields.append(classes[int(np.argmax(probabilities))])
            fields += [f"{v:.6f}" for v in probabilities] + ([f"{p.weights[k]:.6g}"] if weighted else [])
            lines.append(",".join(fields))
    return lines


def record_rows(predictions: list[RecordPrediction], classes: list[str], labelled: bool) -> list[dict]:
    """One row per record: its windows, those dropped by each quality rule, its probabilities (``mean``), predicted
    class."""
    rows = []
    for p in predictions:
        row = {
            "record": p.record.name,
            "subject": p.record.subject,
            **({"label": p.record.label} if labelled else {}),
            "file": str(p.path),
            "sample_rate_hz": p.record.sample_rate,
            "unit": p.record.unit,
            "windows": len(p.probabilities),
            **{f"dropped_{reason}": p.dropped.get(reason, 0) for reason in DROP_REASONS},
        }
        if len(p.probabilities):
            row["predicted"] = classes[int(np.argmax(p.mean))]
            row.update({f"p_{c}": float(v) for c, v in zip(classes, p.mean)})
        else:
            row["predicted"] = "none (every window dropped)"
            row.update({f"p_{c}": None for c in classes})
        rows.append(row)
    return rows


def subject_rows(records: list[dict], classes: list[str]) -> list[dict]:
    """One row per subject: the mean of its records' probabilities (records without windows do not vote)."""
    by_subject: dict[str, list[dict]] = {}
    for row in records:
        by_subject.setdefault(row["subject"], []).append(row)
    rows = []
    for subject, rows_of in sorted(by_subject.items()):
        voting = [r for r in rows_of if r["windows"]]
        row = {
            "subject": subject,
            **({"label": rows_of[0]["label"]} if "label" in rows_of[0] else {}),
            "records": len(rows_of),
            "windows": sum(r["windows"] for r in rows_of),
        }
        if voting:
            mean = np.mean([[r[f"p_{c}"] for c in classes] for r in voting], axis=0)
            row["predicted"] = classes[int(np.argmax(mean))]
            row.update({f"p_{c}": float(v) for c, v in zip(classes, mean)})
        else:
            row["predicted"] = "none (no windows)"
            row.update({f"p_{c}": None for c in classes})
        rows.append(row)
    return rows


def csv_text(rows: list[dict]) -> str:
    if not rows:
        return ""
    header = list(rows[0])
    lines = [",".join(header)]
    for row in rows:
        lines.append(",".join(_cell(row[k]) for k in header))
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6f}" if abs(value) < 1e6 else f"{value:g}"
    text = str(value)
    return f'"{text}"' if "," in text else text


def write_outputs(out_dir: Path, model: TrainedModel, predictions: list[RecordPrediction], labelled: bool) -> dict:
    """predictions.csv, records.csv, subjects.csv and prediction.json into ``out_dir`` (each written atomically);
    returns the record and subject rows."""
    out_dir.mkdir(parents=True, exist_ok=True)
    records = record_rows(predictions, model.classes, labelled)
    subjects = subject_rows(records, model.classes)
    atomic_write_text(
        out_dir / "predictions.csv",
        "\n".join(window_rows(predictions, model.classes, labelled, describes_records(model.features))) + "\n",
    )
    atomic_write_text(out_dir / "records.csv", csv_text(records))
    atomic_write_text(out_dir / "subjects.csv", csv_text(subjects))
    atomic_write_json(
        out_dir / "prediction.json",
        {
            "model": str(model.location or model.runs[0].resolve()),
            "kind": model.kind,
            "runs": [str(r) for r in model.runs],
            "classes": model.classes,
            "model_sample_rate_hz": model.sample_rate,
            "window_s": model.windows.window_s,
            "hop_s": model.windows.hop,
            "records": len(records),
            "windows": sum(r["windows"] for r in records),
            "windows_dropped": {reason: sum(r[f"dropped_{reason}"] for r in records) for reason in DROP_REASONS},
            "record_level": "attention-weighted mean of the record's window probabilities (the weight column)"
            if model.pools_records
            else "mean of the record's window probabilities",
            "subject_level": "mean of the subject's record probabilities",
        },
    )
    return {"records": records, "subjects": subjects}
