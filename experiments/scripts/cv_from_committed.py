"""Rebuild, from a committed experiment folder (its cv_plan.json, cv_summary.json and pooled predictions.csv.gz),
a CV folder that emg-compare and emg-cv-report read: one ``seed_S/fold_FF`` per job with its predictions and the
fold, seed and protocol -- so that a new run can be paired with a committed one whose run folders are gone. No
number is recomputed here: the rows are the committed predictions, split by their fold and seed columns.

    python experiments/scripts/cv_from_committed.py experiments/resemgnet_loso_cpu /tmp/resemgnet_loso_cpu
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
from collections import defaultdict
from pathlib import Path


def rebuild(source: Path, target: Path) -> int:
    protocol = json.loads((source / "cv_summary.json").read_text())["protocol"]
    with gzip.open(source / "predictions.csv.gz", "rt", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        jobs: dict[tuple[str, str], list[list[str]]] = defaultdict(list)
        for row in reader:
            jobs[(row[header.index("seed")], row[header.index("fold")])].append(row)
    target.mkdir(parents=True, exist_ok=False)
    (target / "cv_plan.json").write_text((source / "cv_plan.json").read_text())
    for (seed, fold), rows in jobs.items():
        job = target / f"seed_{seed}" / f"fold_{int(fold):02d}"
        job.mkdir(parents=True)
        with open(job / "predictions.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
        metrics = {"fold": int(fold), "seed": int(seed), "split": protocol["split"], "leaky": protocol["leaky"]}
        (job / "metrics.json").write_text(json.dumps(metrics))
    return len(jobs)


if __name__ == "__main__":
    print(rebuild(Path(sys.argv[1]), Path(sys.argv[2])), "jobs")
