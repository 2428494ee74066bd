"""emg-cv-report DIR: aggregate a finished (or partly finished) cross-validation from its files alone.

Reads every ``predictions.csv`` / ``metrics.json`` pair under DIR (one per fold and seed) and writes, into DIR:
``cv_summary.json``, ``cv_summary.md`` and PNG plots (pooled confusion matrices per level, per-fold bars).
"""

from __future__ import annotations

import argparse
import sys

from emg_lightning.reports.cv_summary import markdown, report
from emg_lightning.runtime.console import one_line_errors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cv_dir", help="the CV folder (emg-cv's output)")
    parser.add_argument("--name", help="title of the summary (default: the folder's name)")
    args = parser.parse_args(argv)
    with one_line_errors():
        summary = report(args.cv_dir, args.name)
    print(markdown(summary))
    print(f"written in {args.cv_dir}: " + ", ".join(summary["outputs"]))
    if summary["failed"] or summary["complete"] is False:
        sys.exit(1)


if __name__ == "__main__":
    main()
