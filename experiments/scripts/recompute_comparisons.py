"""Recompute the paired tests of every committed ``experiments/compare-*`` folder from the per-subject accuracies its
comparison.json holds (the same numbers emg-compare computed from the CV folders' predictions), with today's
signed-rank test (differences rounded before ranking, so equal differences tie), and rewrite comparison.json,
comparison.md and paired_subjects.png. Prints every p-value that changed.

    python experiments/scripts/recompute_comparisons.py experiments
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from emg_lightning.metrics.paired import holm, signed_rank_test
from emg_lightning.reports.compare import markdown, plot, verdict
from emg_lightning.runtime.files import atomic_write_json, atomic_write_text


def recompute(folder: Path) -> list[str]:
    result = json.loads((folder / "comparison.json").read_text())
    changes = []
    comparisons = result["comparisons"]
    for level_index in range(len(comparisons[0]["levels"])):
        rows = [c["levels"][level_index] for c in comparisons]
        old = [dict(row["wilcoxon"]) for row in rows]
        for row in rows:
            differences = np.array(row["accuracy_b"]) - np.array(row["accuracy_a"])
            row["wilcoxon"] = signed_rank_test(differences)
            rounded = np.round(differences, 9)
            row["better_b"], row["better_a"] = int((rounded > 0).sum()), int((rounded < 0).sum())
            row["ties"] = int((rounded == 0).sum())
        if len(rows) > 1:
            for row, adjusted in zip(rows, holm([row["wilcoxon"]["p_value"] for row in rows])):
                row["wilcoxon"]["p_adjusted"] = adjusted
        for c, row, before in zip(comparisons, rows, old):
            after = row["wilcoxon"]
            if abs(before["p_value"] - after["p_value"]) > 1e-12 or before.get("n") != after["n"]:
                changes.append(
                    f"{folder.name}: {c['b']} vs {c['a']}, {row['level']}: p {before['p_value']:.4g} -> "
                    f"{after['p_value']:.4g} (non-zero differences {before.get('n')} -> {after['n']})"
                )
    for c in comparisons:
        for row in c["levels"]:
            row["verdict"] = verdict(row, c["a"], c["b"])
    result["plot"] = plot(result, folder)
    atomic_write_json(folder / "comparison.json", result)
    atomic_write_text(folder / "comparison.md", markdown(result))
    return changes


def main(root: str) -> None:
    folders = sorted(p.parent for p in Path(root).glob("compare-*/comparison.json"))
    changes = [line for folder in folders for line in recompute(folder)]
    print(f"{len(folders)} comparison folders recomputed; {len(changes)} p-values changed")
    print("\n".join(changes))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "experiments")
