"""emg-ensemble A B [C ...] --out DIR: an ensemble of cross-validations of the same split, as a CV folder.

    emg-ensemble logs/cv/qemg_loso-1a2b3c4d logs/cv/resemgnet_loso_cpu-loso-5e6f7a8b --out logs/cv/qemg+resemgnet

Each test window's probabilities become the mean of the members' (each member weighs the same); a member run with
one seed is reused for every seed of the others. Refuses members of different splits, folds, subjects or windows.
Writes per-fold predictions.csv / metrics.json, ensemble.json and the CV summary (cv_summary.md/.json, plots) into
DIR, which emg-cv-report and emg-compare read like any CV folder, and prints the summary.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from emg_lightning.reports.cv_summary import markdown
from emg_lightning.reports.ensemble import build_ensemble
from emg_lightning.runtime.console import one_line_errors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cv_dirs", nargs="+", help="finished CV folders (emg-cv outputs) of the same split")
    parser.add_argument("--out", required=True, help="new folder for the ensemble (must not exist)")
    parser.add_argument("--name", help="title of its summary (default: ensemble of A + B ...)")
    args = parser.parse_args(argv)
    if len(args.cv_dirs) < 2:
        parser.error("give at least two CV folders to ensemble")
    with one_line_errors():
        summary = build_ensemble(args.cv_dirs, Path(args.out), args.name)
    print(markdown(summary))
    print(f"written in {args.out}: {', '.join(summary['outputs'])}, ensemble.json")


if __name__ == "__main__":
    main()
