"""The N2001 windows' qEMG features as the qEMG baseline sees them (``experiment=qemg_loso``), for the probe scripts
beside this file: one loading, from the configured data and the cached feature table, and the nested choice between
feature sets that several of them run."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from scipy.special import softmax

from emg_lightning.config import build_datamodule
from emg_lightning.data.splits import inner_fold_draws
from emg_lightning.models.linear import (
    FeatureLinear,
    balanced_accuracy,
    balanced_log_loss,
    fit_feature_linear,
    inner_fold_mean,
    inner_held_out_logits,
)

CONF = str(Path(__file__).resolve().parents[2] / "conf")


@dataclass
class QemgWindows:
    x: np.ndarray  # (windows, features), float64
    y: np.ndarray  # class index per window
    subject: np.ndarray
    record: np.ndarray
    classes: list[str]
    l2_grid: list[float]  # the baseline's penalty strengths and how its inner cross-validation chooses one
    inner_folds: int
    inner_repeats: int
    inner_score: str
    windows: np.ndarray  # (windows, samples) int16 ADC units, memory-mapped from the cache
    adc_gain: float  # ADC units per microvolt
    sample_rate: float

    def windows_uv(self) -> np.ndarray:
        """The raw windows in microvolts, float32 (read and converted on demand: hundreds of MB at the native rate)."""
        return np.asarray(self.windows, dtype=np.float32) / np.float32(self.adc_gain)


def load_qemg_windows(sample_rate: float | None) -> QemgWindows:
    """Every window of EMGLAB_DIR with the baseline's windowing and quality rules, resampled to ``sample_rate`` Hz
    (None: the native 23,437.5 Hz, the rate of the probes run before the baseline moved to 4,687.5 Hz)."""
    rate = "null" if sample_rate is None else repr(float(sample_rate))
    overrides = ["experiment=qemg_loso", f"data.root={os.environ['EMGLAB_DIR']}", f"data.sample_rate={rate}"]
    with initialize_config_dir(version_base="1.3", config_dir=CONF):
        cfg = compose("train", overrides=overrides)
    datamodule = build_datamodule(cfg)
    datamodule.setup()
    columns = datamodule.table.columns
    return QemgWindows(
        x=np.asarray(datamodule.feature_table, dtype=np.float64),
        y=np.array([datamodule.classes.index(label) for label in columns["label"]]),
        subject=columns["subject"],
        record=columns["record"],
        classes=datamodule.classes,
        l2_grid=list(cfg.model.l2_grid),
        inner_folds=int(cfg.model.inner_folds),
        inner_repeats=int(cfg.model.inner_repeats),
        inner_score=str(cfg.model.inner_score),
        windows=datamodule.table.windows,
        adc_gain=float(datamodule.table.adc_gain),
        sample_rate=float(datamodule.table.sample_rate),
    )


def window_and_record_scores(probabilities: np.ndarray, y: np.ndarray, record: np.ndarray) -> np.ndarray:
    """Window accuracy and balanced accuracy, then record (mean probability) accuracy and balanced accuracy."""
    names = sorted(set(record))
    record_y = np.array([y[record == r][0] for r in names])
    record_predicted = np.array([probabilities[record == r].mean(axis=0).argmax() for r in names])
    window_predicted = probabilities.argmax(axis=1)
    return np.array([
        np.mean(window_predicted == y), balanced_accuracy(y, window_predicted),
        np.mean(record_predicted == record_y), balanced_accuracy(record_y, record_predicted),
    ])  # fmt: skip


def rate_feature_sets(rates: tuple[float | None, ...]) -> tuple[dict[str, np.ndarray], QemgWindows]:
    """The baseline's features at each sampling rate (None: native), named "<rate> Hz (<features>)", and the first
    rate's windows; refuses rates whose quality rules kept other windows (no paired choice then)."""
    loaded = [load_qemg_windows(sample_rate=rate) for rate in rates]
    reference = loaded[0]
    for data in loaded:
        if not (np.array_equal(data.record, reference.record) and np.array_equal(data.y, reference.y)):
            raise SystemExit(f"the windows at {data.sample_rate:g} Hz differ from {reference.sample_rate:g} Hz's")
    return {f"{data.sample_rate:g} Hz ({data.x.shape[1]})": data.x for data in loaded}, reference


def nested_feature_choice(
    sets: dict[str, np.ndarray],
    data: QemgWindows,
    seeds: tuple[int, ...],
    ensembles: dict[str, tuple[str, ...]] | None = None,
) -> tuple[dict[str, list[np.ndarray]], dict[str, int]]:
    """Each feature set (rows aligned with ``data``'s windows) as the baseline fits it, each ensemble (the mean
    probability of the named sets' models), and the nested choice between them all: in each LOSO fold and for each
    seed, the baseline's own inner cross-validation (its settings: 5 subject-grouped folds, 3 draws from the seed,
    held-out class-balanced log-loss, its L2 grid) scores every candidate on the 21 non-test subjects (an ensemble:
    its members' out-of-fold probabilities at their chosen strengths, averaged); the best one (lowest inner loss)
    tests the held-out subject. Returns the scores per seed of each candidate and of "nested choice", and how often
    each candidate was chosen."""
    ensembles = ensembles or {}
    members = {name for names in ensembles.values() for name in names}
    label_of = {s: data.classes[c] for s, c in zip(data.subject, data.y)}
    results: dict[str, list[np.ndarray]] = {name: [] for name in [*sets, *ensembles, "nested choice"]}
    chosen: dict[str, int] = dict.fromkeys([*sets, *ensembles], 0)
    num_classes = len(data.classes)
    for seed in seeds:
        probabilities = {name: np.zeros((len(data.y), num_classes)) for name in results}
        for held_out in sorted(label_of):
            fit = data.subject != held_out
            others = {s: c for s, c in label_of.items() if s != held_out}
            draws = inner_fold_draws(data.subject[fit], others, data.inner_folds, data.inner_repeats, seed)
            inner_loss, inner_probabilities = {}, {}
            for name, x in sets.items():
                net = FeatureLinear(num_classes=num_classes, in_features=x.shape[1])
                choice = fit_feature_linear(net, x[fit], data.y[fit], draws, data.l2_grid, data.inner_score)
                with torch.no_grad():
                    probabilities[name][~fit] = torch.softmax(net(torch.from_numpy(x[~fit]).float()), 1).numpy()
                inner_loss[name] = choice["inner_log_loss"]
                if name in members:
                    held = inner_held_out_logits(x[fit], data.y[fit], draws, [choice["l2"]], num_classes)
                    inner_probabilities[name] = softmax(held[choice["l2"]], axis=-1)
            for name, names in ensembles.items():
                probabilities[name][~fit] = np.mean([probabilities[n][~fit] for n in names], axis=0)
                mean_inner = np.mean([inner_probabilities[n] for n in names], axis=0)
                inner_loss[name] = inner_fold_mean(balanced_log_loss, data.y[fit], draws, np.log(mean_inner))
            best = min(inner_loss, key=inner_loss.get)
            probabilities["nested choice"][~fit] = probabilities[best][~fit]
            chosen[best] += 1
        for name in results:
            results[name].append(window_and_record_scores(probabilities[name], data.y, data.record))
    return results, chosen


def print_nested_choice(outcome: tuple[dict[str, list[np.ndarray]], dict[str, int]], seeds: tuple[int, ...]) -> None:
    results, chosen = outcome
    print(f"LOSO, seeds {list(seeds)} (mean): window acc / bal_acc, record acc / bal_acc")
    for name, values in results.items():
        print(f"  {name:40s} " + " / ".join(f"{v:.3f}" for v in np.mean(values, axis=0)))
    print("  chosen in the folds x seeds: " + ", ".join(f"{name} {n}" for name, n in chosen.items()))
