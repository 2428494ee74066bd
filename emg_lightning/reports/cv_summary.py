"""The CV summary of a cross-validation folder, from its files alone (the library behind emg-cv-report).

Reads every ``predictions.csv`` / ``metrics.json`` pair under DIR (one per fold and seed) and writes, into DIR:
``cv_summary.json``, ``cv_summary.md`` and PNG plots (pooled confusion matrices per level, per-fold bars).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from emg_lightning.files import atomic_write_json, atomic_write_text
from emg_lightning.metrics.aggregate import HEADLINE, LEVELS, aggregate, read_predictions


def collect_folds(cv_dir: Path) -> tuple[list[dict], list[str], list[dict], dict]:
    """(finished folds, class names, failed folds, protocol) found under ``cv_dir``."""
    folds, failed, classes, protocol = [], [], None, {}
    for metrics_path in sorted(cv_dir.rglob("metrics.json")):
        predictions = metrics_path.with_name("predictions.csv")
        if not predictions.is_file():
            continue
        metrics = json.loads(metrics_path.read_text())
        fold_classes, rows = read_predictions(predictions)
        if classes is not None and fold_classes != classes:
            raise SystemExit(
                f"error: {predictions} has classes {fold_classes}, others {classes}: one CV folder "
                f"must hold one configuration"
            )
        classes = fold_classes
        folds.append({"fold": metrics["fold"], "seed": metrics["seed"], "rows": rows, "dir": str(metrics_path.parent)})
        protocol = protocol or {k: metrics.get(k) for k in ("split", "leaky")}
    for failure in sorted(cv_dir.rglob("failed.json")):
        if not failure.with_name("metrics.json").is_file():
            failed.append(json.loads(failure.read_text()))
    return folds, classes or [], failed, protocol


def _fmt(stat: dict) -> str:
    if math.isnan(stat["mean"]):
        return "n/a"
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}" if stat["n"] > 1 else f"{stat['mean']:.3f}"


def markdown(summary: dict) -> str:
    p = summary["protocol"]
    leaky = (
        "**LEAKY** (window-level split: the same recordings and subjects on both sides)"
        if p["leaky"]
        else "subject-independent (no subject in more than one of train / validation / test)"
    )
    lines = [
        f"# Cross-validation summary: {summary['name']}",
        "",
        f"- Split: `{p['split']}`, {summary['n_folds']} folds; {leaky}.",
        f"- Seeds: {', '.join(map(str, summary['seeds']))} ({len(summary['seeds'])}).",
        "- Levels: window (each window on its own), record (mean probability over its windows), subject (mean over its "
        "records); each level pools the test predictions of all folds of a seed; ± is the std across seeds "
        "(shown with 2 or more seeds).",
    ]
    if summary["failed"]:
        lines.append(
            "- Failed folds (not included): "
            + ", ".join(f"fold {f['fold']} seed {f['seed']}: {f['error']}" for f in summary["failed"])
        )
    lines += [
        "",
        "## Pooled predictions",
        "",
        "| level | n | " + " | ".join(HEADLINE) + " |",
        "|---|---|" + "---|" * len(HEADLINE),
    ]
    for level in LEVELS:
        pooled = summary["pooled"][level]
        n = next(iter(pooled["per_seed"].values()))["n"]
        lines.append(f"| {level} | {n} | " + " | ".join(_fmt(pooled["across_seeds"][k]) for k in HEADLINE) + " |")
    classes = summary["classes"]
    lines += [
        "",
        "Per class (sensitivity / specificity, mean across seeds):",
        "",
        "| level | " + " | ".join(classes) + " |",
        "|---|" + "---|" * len(classes),
    ]
    for level in LEVELS:
        a = summary["pooled"][level]["across_seeds"]
        lines.append(
            f"| {level} | "
            + " | ".join(f"{a[f'recall/{c}']['mean']:.3f} / {a[f'specificity/{c}']['mean']:.3f}" for c in classes)
            + " |"
        )
    for level in LEVELS:
        seed, first = next(iter(summary["pooled"][level]["per_seed"].items()))
        lines += [
            "",
            f"Confusion matrix, {level} level, seed {seed} (rows true, columns predicted):",
            "",
            "| true \\ predicted | " + " | ".join(classes) + " |",
            "|---|" + "---|" * len(classes),
        ]
        lines += [f"| {c} | " + " | ".join(map(str, row)) + " |" for c, row in zip(classes, first["confusion"])]
    over = summary["over_folds_window"]
    lines += ["", "## Per fold (window level)", ""]
    if any(len(f["test_subjects"]) == 1 for f in summary["per_fold"]):
        lines += [
            "A fold with one test subject holds one class: its balanced accuracy is that subject's window "
            "recall, and its macro F1 that class's F1 (precision 1 by construction). Compare models on the "
            "pooled figures above.",
            "",
        ]
    lines += [
        "Mean ± std over folds: " + ", ".join(f"{k} {_fmt(over[k])}" for k in HEADLINE),
        "",
        "| seed | fold | test subjects | windows | " + " | ".join(HEADLINE) + " |",
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


def plot(summary: dict, out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes, written = summary["classes"], []
    fig, axes = plt.subplots(1, len(LEVELS), figsize=(4.2 * len(LEVELS), 3.8))
    for ax, level in zip(axes, LEVELS):
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
    written.append(_save(fig, out_dir / "confusion_matrices.png"))
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
    ax.set_ylabel("window accuracy")
    ax.set_title(f"{summary['name']}: per-fold held-out window accuracy")
    fig.tight_layout()
    written.append(_save(fig, out_dir / "per_fold_accuracy.png"))
    plt.close("all")
    return written


def _save(fig, path: Path) -> str:
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)
    return path.name


def report(cv_dir: str | Path, name: str | None = None) -> dict:
    cv_dir = Path(cv_dir)
    if not cv_dir.is_dir():
        raise SystemExit(f"error: CV folder {cv_dir} does not exist")
    folds, classes, failed, protocol = collect_folds(cv_dir)
    if not folds:
        raise SystemExit(f"error: no finished fold under {cv_dir} (no metrics.json + predictions.csv pair)")
    summary = {"name": name or cv_dir.name, "protocol": protocol, "failed": failed, **aggregate(folds, classes)}
    summary["plots"] = plot(summary, cv_dir)
    atomic_write_json(cv_dir / "cv_summary.json", summary)
    atomic_write_text(cv_dir / "cv_summary.md", markdown(summary))
    return summary
