"""The CV report of each part of a pooled cross-validation (data=pooled): every fold's test predictions split by
the part their record belongs to (the ``<part>:`` prefix the pooled reader gives records and subjects), written as
one CV folder per part, and reported there with the same code as any CV (emg-cv-report).

Run: python experiments/scripts/per_part_report.py logs/cv/pooled_qemg_kfold10 experiments/pooled_qemg_kfold10_by_clinic
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from emg_lightning.reports.cv_summary import markdown, report


def split_by_part(cv_dir: Path, out: Path) -> list[Path]:
    parts: dict[str, Path] = {}
    for predictions in sorted(cv_dir.glob("seed_*/fold_*/predictions.csv")):
        header, *rows = predictions.read_text().splitlines()
        record_column = header.split(",").index("record")
        fold = predictions.parent.relative_to(cv_dir)
        by_part: dict[str, list[str]] = {}
        for row in rows:
            by_part.setdefault(row.split(",")[record_column].split(":", 1)[0], []).append(row)
        for part, part_rows in by_part.items():
            folder = out / part / fold
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "predictions.csv").write_text("\n".join([header, *part_rows]) + "\n")
            shutil.copy2(predictions.with_name("metrics.json"), folder / "metrics.json")
            parts[part] = out / part
    return sorted(parts.values())


def main() -> None:
    cv_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    for folder in split_by_part(cv_dir, out):
        summary = report(folder, f"{cv_dir.name}, {folder.name} subjects only")
        print(markdown(summary).split("## Per-fold")[0])


if __name__ == "__main__":
    main()
