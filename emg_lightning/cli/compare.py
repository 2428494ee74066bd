"""emg-compare A B [C ...]: paired statistics between cross-validations of the same folds and subjects.

    emg-compare logs/cv/features-loso-1a2b3c4d logs/cv/resemgnet-loso-5e6f7a8b
    emg-compare A B C --out comparisons/abc     # B and C each against A, Holm-adjusted

Checks that the folders share the split, folds and test subjects (refuses otherwise), then writes comparison.md,
comparison.json and paired_subjects.png (one line per subject, A -> B) into --out (default: beside A, named
compare-<A>-vs-<B>...), and prints the table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from emg_lightning.reports.compare import compare, markdown
from emg_lightning.runtime.console import one_line_errors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cv_dirs", nargs="+", help="CV folders (emg-cv outputs); the first is the baseline A")
    parser.add_argument("--out", help="folder for comparison.md/.json and the plot")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples of subjects (default 2000)")
    args = parser.parse_args(argv)
    if len(args.cv_dirs) < 2:
        parser.error("give at least two CV folders: the baseline A and one to compare with it")
    if args.resamples < 100:
        parser.error("--resamples must be at least 100")
    names = [Path(d).resolve().name for d in args.cv_dirs]
    out = Path(args.out) if args.out else Path(args.cv_dirs[0]).resolve().parent / ("compare-" + "-vs-".join(names))
    with one_line_errors():
        result = compare(args.cv_dirs, out, args.resamples)
    print(markdown(result))
    print(f"written in {out}: comparison.md, comparison.json, {result['plot']}")


if __name__ == "__main__":
    main()
