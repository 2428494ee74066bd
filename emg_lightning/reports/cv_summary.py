"""The CV summary of a cross-validation folder, from its files alone (the library behind emg-cv-report).

Reads every ``predictions.csv`` / ``metrics.json`` pair under DIR (one per fold and seed) and writes, into DIR:
``cv_summary.json``, ``cv_summary.md`` and PNG plots (pooled confusion matrices per level, per-fold bars). When
emg-cv's ``cv_plan.json`` lists jobs that have no result, every output is named ``*.partial.*`` and says so.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from emg_lightning.cv.identity import cv_settings, differing_keys
from emg_lightning.metrics.aggregate import HEADLINE, LEVELS, MIN_SUBJECTS_EACH_WAY, aggregate
from emg_lightning.metrics.intervals import BOOTSTRAP_RESAMPLES
from emg_lightning.run_files.predictions import read_predictions
from emg_lightning.runtime.errors import DataError
from emg_lightning.runtime.files import atomic_save_figure, atomic_write_json, atomic_write_text

# emg-cv's record of the sweep: which folds and seeds the configuration has
PLAN = "cv_plan.json"
# where a nested search keeps its inner trials (never results of the CV)
SEARCH_DIR = "search"
HPARAMS_SOURCES = {
    "fixed": "fixed in the configuration (a report cannot know whether they were chosen before any result was seen: "
    "the experiment's notes say)",
    "nested": "nested search: each outer fold chose its values on its own non-test subjects (validation subjects "
    "drawn from them, or a closed-form model's inner cross-validation over them; values per fold in cv_summary.json)",
    "outside": "**chosen by a search that saw test subjects: the figures are optimistically biased**",
}
OUTPUTS = {
    "json": ("cv_summary", "json"),
    "markdown": ("cv_summary", "md"),
    "confusion": ("confusion_matrices", "png"),
    "per_fold": ("per_fold_accuracy", "png"),
}


def collect_folds(cv_dir: Path) -> tuple[list[dict], list[str], list[dict], dict]:
    """(finished folds, class names, failed folds, protocol) found under ``cv_dir``."""
    folds, failed, classes, protocol = [], [], None, {}
    shared, first_config, hparams = None, None, {"source": "unknown (no config.yaml)", "searched": [], "chosen": {}}
    for metrics_path in sorted(cv_dir.rglob("metrics.json")):
        predictions = metrics_path.with_name("predictions.csv")
        if not predictions.is_file() or SEARCH_DIR in metrics_path.relative_to(cv_dir).parts:
            continue
        config_path = metrics_path.with_name("config.yaml")
        run_key = str(metrics_path.parent.relative_to(cv_dir))
        if config_path.is_file():  # folds of other settings are never pooled into one figure
            full = OmegaConf.to_container(OmegaConf.load(config_path))
            settings = cv_settings(full)
            hparams["source"] = full.get("hparams_source", "fixed")
            hparams["searched"] = list(full.get("hparams_searched") or [])
            hparams["chosen"][run_key] = {
                key: OmegaConf.select(OmegaConf.create(full), key) for key in hparams["searched"]
            }
            if shared is None:
                shared, first_config = settings, config_path
            elif settings != shared:
                differ = differing_keys(shared, settings)
                raise DataError(
                    f"{config_path} and {first_config} hold different settings ({', '.join(differ[:6])}): one CV "
                    f"folder must hold one configuration; report each configuration's folder separately"
                )
        metrics = read_json(metrics_path)
        if metrics.get("l2") is not None:  # a closed-form fit chose its penalty by inner cross-validation
            hparams["inner_choice"] = True
            hparams["chosen"].setdefault(run_key, {})["model.l2"] = metrics["l2"]
        fold_classes, rows = read_predictions(predictions)
        if classes is not None and fold_classes != classes:
            raise DataError(
                f"{predictions} has classes {fold_classes}, others {classes}: one CV folder must hold one configuration"
            )
        classes = fold_classes
        folds.append(
            {
                "fold": metrics["fold"],
                "seed": metrics["seed"],
                "rows": rows,
                "dir": str(metrics_path.parent),
                "validation": validation_score(metrics),
            }
        )
        protocol = protocol or {k: metrics.get(k) for k in ("split", "leaky")}
    for failure in sorted(cv_dir.rglob("failed.json")):
        if not failure.with_name("metrics.json").is_file() and SEARCH_DIR not in failure.relative_to(cv_dir).parts:
            failed.append(read_json(failure))
    if folds:
        protocol["hparams"] = hparams
    return folds, classes or [], failed, protocol


def validation_score(metrics: dict) -> dict | None:
    """The validation score of the weights the fold tested and what it measures: the best checkpoint's, or with
    ``test_weights=last`` the final epoch's; None where it was not recorded (ensembles, external evaluations,
    final-epoch runs from before ``final_val_score``). Runs from before ``best_val_score`` monitored val/bal_acc."""
    if str(metrics.get("test_weights", "best")).startswith("last"):
        return metrics.get("final_val_score")
    if metrics.get("best_val_score"):
        return metrics["best_val_score"]
    if metrics.get("best_val_bal_acc") is not None:
        return {"monitor": "val/bal_acc", "value": metrics["best_val_bal_acc"]}
    return None


def selection_score(folds: list[dict]) -> dict | None:
    """The mean over fold runs of their best validation score, when every run has one of the same kind: a figure
    from validation subjects only, for choosing between configurations without looking at test subjects."""
    scores = [f.get("validation") for f in folds]
    monitors = {s["monitor"] for s in scores if s}
    if not scores or None in scores or len(monitors) != 1 or any(s["value"] is None for s in scores):
        return None
    return {"monitor": monitors.pop(), "mean": float(np.mean([s["value"] for s in scores])), "runs": len(scores)}


def read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not readable JSON ({exc}): rerun that fold") from exc
    if not isinstance(value, dict):
        raise DataError(f"{path}: not a JSON object: rerun that fold")
    return value


def missing_jobs(cv_dir: Path, folds: list[dict]) -> list[list[int]] | None:
    """(fold, seed) pairs that emg-cv's cv_plan.json lists and that have no result; None without a plan."""
    plan_path = cv_dir / PLAN
    if not plan_path.is_file():
        return None
    plan = read_json(plan_path)
    done = {(f["fold"], f["seed"]) for f in folds}
    return [[fold, seed] for seed in plan["seeds"] for fold in plan["folds"] if (fold, seed) not in done]


def _fmt(stat: dict) -> str:
    if stat["mean"] is None or math.isnan(stat["mean"]):
        return "n/a"
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}" if stat["n"] > 1 else f"{stat['mean']:.3f}"


def _hparams_line(hparams: dict) -> str:
    source = hparams.get("source", "unknown")
    line = HPARAMS_SOURCES.get(source, source)
    line += f" over {', '.join(hparams['searched'])}" if hparams.get("searched") else ""
    if hparams.get("inner_choice"):
        line += (
            "; the L2 strength (model.l2_grid) chosen in each fold by an inner cross-validation over that fold's "
            "non-test subjects (values per fold in cv_summary.json)"
        )
    return line


def _interval(bounds: list | None) -> str:
    if not bounds or bounds[0] is None or math.isnan(bounds[0]):
        return ""
    return f" [{bounds[0]:.3f}, {bounds[1]:.3f}]"


def _with_interval(pooled: dict, key: str) -> str:
    """One seed: the figure and its 95 % interval over subjects; several: mean ± std across seeds and the 95 %
    interval of that mean over subjects (the seeds' own t interval is in the JSON)."""
    stat = pooled["across_seeds"][key]
    if stat["n"] > 1:
        return _fmt(stat) + _interval(stat.get("interval"))
    only = next(iter(pooled["per_seed"].values()))
    return _fmt(stat) + _interval(only["intervals"].get(key))


def markdown(summary: dict) -> str:
    p = summary["protocol"]
    leaky = (
        (
            "**LEAKY** (record-level split: recordings of the same subjects on both sides)"
            if p["split"] == "random_records"
            else "**LEAKY** (window-level split: the same recordings and subjects on both sides)"
        )
        if p["leaky"]
        else "subject-independent (no subject in more than one of train / validation / test)"
    )
    done = len(summary["per_fold"])
    if summary.get("complete") is False:
        status = (
            f"**PARTIAL: {done} of {summary['jobs_expected']} jobs** have results; missing (fold, seed): "
            + ", ".join(f"({f}, {s})" for f, s in summary["missing"])
            + ". Not a cross-validation result: run the same emg-cv command again to finish it."
        )
    elif summary.get("complete") is None:
        status = f"Completeness unknown: no cv_plan.json (written by emg-cv) in this folder; {done} jobs found."
    else:
        status = f"Complete: all {done} jobs (folds x seeds) of the configuration."
    lines = [
        f"# Cross-validation summary: {summary['name']}",
        "",
        f"- {status}",
        f"- Split: `{p['split']}`, {summary['n_folds']} folds; {leaky}.",
        f"- Hyperparameters: {_hparams_line(p.get('hparams') or {})}",
        f"- Seeds: {', '.join(map(str, summary['seeds']))} ({len(summary['seeds'])}).",
        "- Levels: "
        + (
            "window (each window on its own), "
            if "window" in _levels(summary)
            else "no window level (one prediction per record), "
        )
        + "record ("
        + (
            "mean probability over its windows"
            if summary.get("record_pooling", "mean") == "mean"
            else "its windows' probabilities weighted by the record-level model's attention, the weight column"
        )
        + "), subject (mean over its records); each level pools the test predictions of all folds of a seed.",
        "- Intervals (95 %): with one seed, accuracy and balanced accuracy carry a subject-clustered bootstrap "
        f"interval ({BOOTSTRAP_RESAMPLES} resamples of whole subjects: windows of one person are not independent), and "
        "subject-level accuracy the exact binomial (Clopper-Pearson) interval of k of N subjects (subject-level "
        f"balanced accuracy: the subject bootstrap, only with at least {MIN_SUBJECTS_EACH_WAY} subjects right and "
        f"{MIN_SUBJECTS_EACH_WAY} wrong, since it undercovers near 0 and 1). With several seeds: "
        "mean ± std across seeds, and the interval of that mean from the same subject-clustered bootstrap (each "
        "resample scores every seed on the same subjects; subject level: the exact binomial envelope of the seeds' "
        "mean count). The t interval across seeds alone (seed-to-seed variation, `low` / `high` in cv_summary.json) "
        "would leave out which subjects were tested.",
    ]
    selection = summary.get("selection_score")
    if selection:
        lines.append(
            f"- Selection score (validation data only, never the test set): {selection['monitor']} of the tested "
            f"weights, mean over the {selection['runs']} fold runs = {selection['mean']:.4f} "
            f"({'lower' if 'loss' in selection['monitor'] else 'higher'} is better). It is not nested: each "
            f"fold's score comes from its own validation subjects, but the mean runs over every fold, so every "
            f"subject's data takes part in a choice made by it -- a figure chosen by it is optimistic; for an "
            f"unbiased one, choose inside each outer fold (emg-cv hparams_search=...) or test the choice on other "
            f"subjects."
        )
    if summary["failed"]:
        lines.append(
            "- Failed folds (not included): "
            + ", ".join(f"fold {f['fold']} seed {f['seed']}: {f['error']}" for f in summary["failed"])
        )
    levels = _levels(summary)
    lines += [
        "",
        "## Pooled predictions",
        "",
        "| level | n | acc [95 % CI] | bal_acc [95 % CI] | f1_macro | auroc_macro | ece |",
        "|---|---|---|---|---|---|---|",
    ]
    if "window" not in levels:
        lines.append(
            "| window | not applicable: the features describe whole records, one prediction per record | | | | | |"
        )
    for level in levels:
        pooled = summary["pooled"][level]
        n = next(iter(pooled["per_seed"].values()))["n"]
        cells = [_with_interval(pooled, "acc"), _with_interval(pooled, "bal_acc")]
        cells += [_fmt(pooled["across_seeds"][k]) for k in ("f1_macro", "auroc_macro", "ece")]
        lines.append(f"| {level} | {n} | " + " | ".join(cells) + " |")
    classes = summary["classes"]
    lines += [
        "",
        "Per class (sensitivity / specificity, mean across seeds):",
        "",
        "| level | " + " | ".join(classes) + " |",
        "|---|" + "---|" * len(classes),
    ]
    for level in levels:
        a = summary["pooled"][level]["across_seeds"]
        lines.append(
            f"| {level} | "
            + " | ".join(f"{a[f'recall/{c}']['mean']:.3f} / {a[f'specificity/{c}']['mean']:.3f}" for c in classes)
            + " |"
        )
    for level in levels:
        seed, first = next(iter(summary["pooled"][level]["per_seed"].items()))
        lines += [
            "",
            f"Confusion matrix, {level} level, seed {seed} (rows true, columns predicted):",
            "",
            "| true \\ predicted | " + " | ".join(classes) + " |",
            "|---|" + "---|" * len(classes),
        ]
        lines += [f"| {c} | " + " | ".join(map(str, row)) + " |" for c, row in zip(classes, first["confusion"])]
    unit = levels[0]
    lines += ["", f"## Per fold ({unit} level)", ""]
    if any(len(f["test_subjects"]) == 1 for f in summary["per_fold"]):
        lines += [
            f"A fold with one test subject holds one class: its balanced accuracy is that subject's {unit} "
            "recall, and its macro F1 that class's F1 (precision 1 by construction). Compare models on the "
            "pooled figures above.",
            "",
        ]
    lines += [
        *_over_folds_lines(summary),
        "",
        f"| seed | fold | test subjects | {unit}s | " + " | ".join(HEADLINE) + " |",
        "|---|---|---|---|" + "---|" * len(HEADLINE),
    ]
    for f in summary["per_fold"]:
        subjects = f["test_subjects"]
        subjects = ", ".join(subjects) if len(subjects) <= 4 else f"{len(subjects)} subjects"
        lines.append(
            f"| {f['seed']} | {f['fold']} | {subjects} | {f['n']} | "
            + " | ".join("n/a" if math.isnan(f[k]) else f"{f[k]:.3f}" for k in HEADLINE)
            + " |"
        )
    return "\n".join(lines) + "\n"


def plot(summary: dict, out_dir: Path, names: dict[str, str]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes, written = summary["classes"], []
    levels = _levels(summary)
    fig, axes = plt.subplots(1, len(levels), figsize=(4.2 * len(levels), 3.8))
    for ax, level in zip(axes, levels):
        seed, first = next(iter(summary["pooled"][level]["per_seed"].items()))
        cm = first["confusion"]
        ax.imshow(cm, cmap="Blues")
        top = max(max(row) for row in cm) or 1
        for i, row in enumerate(cm):
            for j, v in enumerate(row):
                ax.text(j, i, str(v), ha="center", va="center", color="white" if v > top / 2 else "black")
        ax.set_xticks(range(len(classes)), classes)
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{level} (bal. acc {first['bal_acc']:.2f}, seed {seed})")
    fig.tight_layout()
    written.append(atomic_save_figure(fig, out_dir / names["confusion"]))
    folds = summary["per_fold"]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(folds) + 2), 3.5))
    labels = [
        f"{f['fold']}"
        + (f" {f['test_subjects'][0]}" if len(f["test_subjects"]) == 1 else "")
        + (f"/s{f['seed']}" if len(summary["seeds"]) > 1 else "")
        for f in folds
    ]
    ax.bar(range(len(folds)), [f["acc"] for f in folds], color="tab:blue")
    ax.set_xticks(range(len(folds)), labels, rotation=90 if len(folds) > 8 else 0)
    ax.set_ylim(0, 1)
    ax.set_xlabel("fold" + ("/seed" if len(summary["seeds"]) > 1 else ""))
    ax.set_ylabel(f"{levels[0]} accuracy")
    ax.set_title(f"{summary['name']}: per-fold held-out {levels[0]} accuracy")
    fig.tight_layout()
    written.append(atomic_save_figure(fig, out_dir / names["per_fold"]))
    plt.close("all")
    return written


def _over_folds_lines(summary: dict) -> list[str]:
    """Mean ± std over the folds, for each seed on its own (summaries from before per-seed figures: all runs)."""
    if "over_folds_per_seed" not in summary:
        over = summary["over_folds_window"]
        return ["Mean ± std over fold runs: " + ", ".join(f"{k} {_fmt(over[k])}" for k in HEADLINE)]
    return ["Mean ± std over the folds of each seed:", ""] + [
        f"- seed {seed}: " + ", ".join(f"{k} {_fmt(over[k])}" for k in HEADLINE)
        for seed, over in summary["over_folds_per_seed"].items()
    ]


def _levels(summary: dict) -> tuple[str, ...]:
    """The levels a summary has (summaries written before ``levels`` existed have all three)."""
    return tuple(summary.get("levels") or LEVELS)


def output_names(complete: bool | None) -> dict[str, str]:
    """File names of the summary: ``cv_summary.partial.json`` etc. while jobs are missing."""
    tag = ".partial" if complete is False else ""
    return {key: f"{stem}{tag}.{ext}" for key, (stem, ext) in OUTPUTS.items()}


def finished_folds(cv_dir: Path) -> tuple[list[dict], list[str], list[dict], dict, list[list[int]] | None]:
    """(folds, classes, failed, protocol, missing jobs or None without a plan) of an existing CV folder with at least
    one finished fold; otherwise a one-line error."""
    if cv_dir.exists() and not cv_dir.is_dir():
        raise DataError(f"{cv_dir} is a file, not a CV folder: give the folder emg-cv wrote (its cv_dir)")
    if not cv_dir.is_dir():
        raise DataError(f"CV folder {cv_dir} does not exist")
    folds, classes, failed, protocol = collect_folds(cv_dir)
    if not folds:
        raise DataError(f"no finished fold under {cv_dir} (no metrics.json + predictions.csv pair)")
    return folds, classes, failed, protocol, missing_jobs(cv_dir, folds)


def report(cv_dir: str | Path, name: str | None = None) -> dict:
    cv_dir = Path(cv_dir)
    folds, classes, failed, protocol, missing = finished_folds(cv_dir)
    complete = None if missing is None else not missing
    summary = {
        "name": name or cv_dir.name,
        "protocol": protocol,
        "complete": complete,
        "missing": missing or [],
        "jobs_expected": None if missing is None else len(folds) + len(missing),
        "failed": failed,
        "selection_score": selection_score(folds),
        **aggregate(folds, classes),
    }
    names = output_names(complete)
    summary["plots"] = plot(summary, cv_dir, names)
    summary["outputs"] = [names["json"], names["markdown"], *summary["plots"]]
    atomic_write_json(cv_dir / names["json"], summary)
    atomic_write_text(cv_dir / names["markdown"], markdown(summary))
    stale = output_names(False if complete is not False else True)
    for key, file_name in stale.items():  # never leave a complete-looking summary beside a partial one, or back
        if file_name != names[key]:
            (cv_dir / file_name).unlink(missing_ok=True)
    return summary
