"""The mean-pooled twin of a record-level model's CV folder: the same per-window probabilities with the attention
weights dropped, so each record's probability becomes the plain mean of its windows' (what a window model gets).
emg-compare of the two then isolates what attention pooling adds over mean pooling, for one trained model.

    python experiments/scripts/mean_pooled_twin.py logs/cv/qemg_mil logs/cv/qemg_mil_mean_pooled
"""

from __future__ import annotations

import csv
import io
import shutil
import sys
from pathlib import Path

from emg_lightning.reports.cv_summary import report


def main(source: Path, target: Path) -> None:
    if target.exists():
        sys.exit(f"error: {target} exists: delete it or choose another folder")
    folds = sorted(source.glob("seed_*/fold_*/predictions.csv"))
    if not folds:
        sys.exit(f"error: {source} holds no seed_*/fold_*/predictions.csv")
    for predictions in folds:
        rows = list(csv.DictReader(predictions.open(newline="")))
        if not rows or "weight" not in rows[0]:
            sys.exit(f"error: {predictions} has no weight column: not a record-level model's CV")
        folder = target / predictions.parent.relative_to(source)
        folder.mkdir(parents=True)
        columns = [c for c in rows[0] if c != "weight"]
        text = io.StringIO()
        writer = csv.DictWriter(text, columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        (folder / "predictions.csv").write_text(text.getvalue())
        shutil.copy(predictions.parent / "metrics.json", folder / "metrics.json")
        shutil.copy(predictions.parent / "config.yaml", folder / "config.yaml")
    shutil.copy(source / "cv_plan.json", target / "cv_plan.json")
    report(target, f"{source.name}, mean-pooled (attention weights dropped)")
    print(f"written: {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
