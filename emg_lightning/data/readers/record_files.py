"""Records named by path, as emg-predict, emg-eval, emg-explain and emg-muap take them: WFDB headers (EMGLab records
by their names, any other by its header), folders of them, and the Algiers set's original ``.asc`` files."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from emg_lightning.data.readers import algiers, emglab, wfdb_dir
from emg_lightning.data.records import Recording
from emg_lightning.runtime.errors import DataError


def find_records(inputs: Iterable[str | Path]) -> list[Path]:
    """Record files of the inputs: folders (every ``*.hea`` in them, or every ``.asc`` below a folder of Algiers
    originals) and single records (``x.hea``, ``x`` or an Algiers ``.asc`` file)."""
    headers: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            asc = sorted(path.rglob("*.asc"))
            headers += asc if asc and not any(path.glob("*.hea")) else wfdb_dir.list_headers(path)
        elif path.suffix in (".hea", ".asc") and path.is_file():
            headers.append(path)
        elif path.with_suffix(".hea").is_file():
            headers.append(path.with_suffix(".hea"))
        else:
            raise DataError(f"{path}: neither a folder of WFDB records nor a record (.hea) that exists")
    seen = Counter(h.resolve() for h in headers)
    twice = sorted(str(h) for h, n in seen.items() if n > 1)
    if twice:
        raise DataError(f"{twice[0]} is given twice: list each record once")
    by_name: dict[str, Path] = {}
    for header in headers:  # outputs and subjects are keyed by record name: two files of one name would merge
        other = by_name.setdefault(header.stem, header)
        if other != header:
            raise DataError(
                f"{other} and {header} are both named {header.stem}: records of different folders must have "
                f"different names (rename one), or they would be merged into one record and subject"
            )
    return headers


def read_any(
    header: Path, subject: str | None = None, label: str | None = None, channel: int | None = None
) -> Recording:
    """EMGLab records by their names, any other WFDB record by its header. A given subject or label wins over the
    name's (emg-eval's renamed labels); the subject defaults to the record's name when nothing says otherwise."""
    if header.suffix == ".asc":
        name, own_subject, own_label, metadata = algiers.parse_asc_name(header)
        return algiers.asc_recording(header, name, subject or own_subject, label or own_label, metadata)
    if emglab.RECORD_NAME.match(header.stem):
        record = emglab.read_record(header)
        return dataclasses.replace(record, subject=subject or record.subject, label=label or record.label)
    record = wfdb_dir.read_record(header, subject or header.stem, label or "unknown", channel)
    wfdb_dir.say_assumed_units({record.unit: 1}, str(header))
    return record
