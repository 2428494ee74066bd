"""emg-cv-report DIR: aggregate a finished (or partly finished) cross-validation from its files alone.

Reads every ``predictions.csv`` / ``metrics.json`` pair under DIR (one per fold and seed) and writes, into DIR:
``cv_summary.json``, ``cv_summary.md`` and PNG plots (pooled confusion matrices per level, per-fold bars).
"""

from __future__ import annotations

import argparse
import sys

from emg_lightning.reports.cv_summary import markdown, report
from emg_lightning.runtime.errors import EMGLightningError


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cv_dir", help="the CV folder (emg-cv's output)")
    parser.add_argument("--name", help="title of the summary (default: the folder's name)")
    args = parser.parse_args(argv)
    try:
        summary = report(args.cv_dir, args.name)
    except EMGLightningError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(markdown(summary))
    print(f"written in {args.cv_dir}: " + ", ".join(summary["outputs"]))
    if summary["failed"] or summary["complete"] is False:
        sys.exit(1)


if __name__ == "__main__":
    main()
