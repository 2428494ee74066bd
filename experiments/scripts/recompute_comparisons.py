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

from emg_lightning.metrics.paired import exact_differences, signed_rank_test
from emg_lightning.reports.compare import judge, markdown, plot
from emg_lightning.runtime.files import atomic_write_json, atomic_write_text


def recompute(folder: Path) -> list[str]:
    result = json.loads((folder / "comparison.json").read_text())
    comparisons = result["comparisons"]
    before = [[dict(row["wilcoxon"]) for row in c["levels"]] for c in comparisons]
    for c in comparisons:
        for row in c["levels"]:
            differences = exact_differences(np.array(row["accuracy_b"]) - np.array(row["accuracy_a"]))
            row["wilcoxon"] = signed_rank_test(differences)
            row["better_b"], row["better_a"] = int((differences > 0).sum()), int((differences < 0).sum())
            row["ties"] = int((differences == 0).sum())
    judge(comparisons)  # Holm across the models, per level, and the verdicts: as emg-compare does
    changes = [
        f"{folder.name}: {c['b']} vs {c['a']}, {row['level']}: p {old['p_value']:.4g} -> "
        f"{row['wilcoxon']['p_value']:.4g} (non-zero differences {old.get('n')} -> {row['wilcoxon']['n']})"
        for c, olds in zip(comparisons, before)
        for row, old in zip(c["levels"], olds)
        if abs(old["p_value"] - row["wilcoxon"]["p_value"]) > 1e-12 or old.get("n") != row["wilcoxon"]["n"]
    ]
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
