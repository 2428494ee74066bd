"""Normal ranges of the MUAP measures, as an EMG laboratory keeps them: mean ± 2 SD over the motor units of its own
normal subjects, for one muscle, recorded the same way. Taken from a folder ``emg-muap`` wrote over a laboratory's
records (``records.csv`` and each record's ``NAME_units.csv``), never including the subject being judged."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emg_lightning.runtime.errors import DataError

RANGE_MEASURES = ("duration_ms", "amplitude_uv", "phases", "turns", "area_uv_ms", "thickness_ms", "size_index")
MIN_NORMAL_SUBJECTS = 3


@dataclass(frozen=True)
class NormalRange:
    mean: float
    sd: float
    units: int

    @property
    def low(self) -> float:
        return self.mean - 2 * self.sd

    @property
    def high(self) -> float:
        return self.mean + 2 * self.sd

    def place(self, value: float) -> str:
        """``low``, ``normal`` or ``high`` (``n/a`` for a value that is not a number)."""
        if not np.isfinite(value):
            return "n/a"
        return "low" if value < self.low else "high" if value > self.high else "normal"


@dataclass(frozen=True)
class Reference:
    folder: Path
    muscle: str
    subjects: list[str]
    ranges: dict[str, NormalRange]
    note: str  # what differs between the reference and the judged record ("" when nothing does)


def normal_ranges(unit_rows: list[dict]) -> dict[str, NormalRange]:
    """Mean ± 2 SD (SD with ddof 1) of each measure over the units given."""
    ranges = {}
    for measure in RANGE_MEASURES:
        values = np.array([float(r[measure]) for r in unit_rows if r.get(measure) not in (None, "", "nan")])
        values = values[np.isfinite(values)]
        if len(values) > 1:
            ranges[measure] = NormalRange(float(values.mean()), float(values.std(ddof=1)), len(values))
    return ranges


def load_reference(
    folder: str | Path, muscle: str, subject: str, rate_hz: float, normal_label: str = "normal"
) -> Reference:
    """The normal ranges of ``muscle`` from an emg-muap folder, leaving out ``subject``; DataError when the folder
    cannot give them (not an emg-muap folder, no normal subjects of that muscle, too few)."""
    folder = Path(folder)
    table = folder / "records.csv"
    if not table.is_file():
        raise DataError(
            f"--normal-from {folder} holds no records.csv: give a folder emg-muap wrote over several records"
        )
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not {"record", "label", "subject", "muscle"} <= rows[0].keys():
        raise DataError(f"{table} lacks the columns record, label, subject, muscle: write it again with emg-muap")
    if not muscle:
        raise DataError("the record's header names no muscle: normal ranges are per muscle, so none can be applied")
    normals = [r for r in rows if r["label"] == normal_label]
    if not normals:
        labels = sorted({r["label"] for r in rows})
        raise DataError(f"{table} holds no record labelled {normal_label!r} (labels there: {', '.join(labels)})")
    same_muscle = [r for r in normals if r["muscle"] == muscle and r["subject"] != subject]
    if not same_muscle:
        muscles = sorted({r["muscle"] for r in normals})
        raise DataError(
            f"{table} holds no {normal_label} subject's record of the {muscle} other than {subject}'s (muscles of "
            f"its {normal_label} records: {', '.join(muscles)}): normal ranges from another muscle do not apply"
        )
    subjects = sorted({r["subject"] for r in same_muscle})
    if len(subjects) < MIN_NORMAL_SUBJECTS:
        raise DataError(
            f"{table}: only {len(subjects)} {normal_label} subject(s) of the {muscle} besides {subject}: at least "
            f"{MIN_NORMAL_SUBJECTS} are needed for a normal range"
        )
    units = []
    for row in same_muscle:
        path = folder / f"{row['record']}_units.csv"
        if not path.is_file():
            raise DataError(f"{path} is missing: {table} lists {row['record']}; write the folder again with emg-muap")
        with open(path, newline="") as handle:
            units += list(csv.DictReader(handle))
    rates = sorted({float(r["rate_hz"]) for r in same_muscle if r.get("rate_hz")})
    note = ""
    if rates and any(abs(r - rate_hz) > 1e-6 for r in rates):
        note = (
            f"the normal records were recorded at {', '.join(f'{r:g}' for r in rates)} Hz, this one at {rate_hz:g} Hz: "
            f"another laboratory or setup, whose normal values may not apply"
        )
    return Reference(folder, muscle, subjects, normal_ranges(units), note)
