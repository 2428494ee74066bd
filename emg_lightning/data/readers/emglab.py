"""EMGLab N2001 directories: ``N2001{A|C|M}{subject}{muscle}{record}.hea`` + ``.bin`` (WFDB format 16).

Labels and subjects come from the record names; header comments are kept as metadata. Samples are read as raw
int16 (never through ``wfdb``'s physical conversion, which turns the saturation value -32768 into NaN).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from emg_lightning.data.readers.base import DataSource, RecordEntry, SourceOptions, register, wfdb_files
from emg_lightning.data.readers.wfdb_dir import calibrated, gain_per_uv, header_metadata, list_headers, read_header
from emg_lightning.data.records import Recording
from emg_lightning.runtime.errors import DataError

RECORD_NAME = re.compile(r"^N2001(?P<code>[ACM])(?P<number>\d{2})(?P<muscle>[A-Z]{2})(?P<record>\d{2})$")
LABEL_CODES = {"A": "als", "C": "normal", "M": "myopathy"}
# N2001's muscle codes (this project's records are all BB); others are kept as written
MUSCLE_CODES = {"BB": "biceps brachii"}


def list_records(root: str | os.PathLike) -> list[Path]:
    return list_headers(root, kind="EMGLab")


def parse_record_name(name: str, path: Path) -> tuple[str, str]:
    """(subject, label) from a record name such as N2001A01BB02 -> ('A01', 'als')."""
    match = RECORD_NAME.match(name)
    if not match:
        raise DataError(
            f"{path}: record name {name!r} is not an EMGLab N2001 name (N2001<A|C|M><nn><muscle><nn>); "
            f"use the generic WFDB reader for other data sets"
        )
    code = match["code"]
    if code not in LABEL_CODES:
        raise DataError(f"{path}: unknown label code {code!r}; EMGLab codes are A (ALS), C (control), M (myopathy)")
    return f"{code}{match['number']}", LABEL_CODES[code]


def muscle_of(name: str) -> str:
    match = RECORD_NAME.match(name)
    code = match["muscle"] if match else ""
    return MUSCLE_CODES.get(code, code)


def canonical_muscle(name: str, comments: dict[str, str]) -> dict[str, str]:
    """Header comments with ``muscle`` named from the record's code, so that sets agree on one name (the header's
    own text, e.g. 'Biceps brachii (long head)', is kept as ``muscle_as_written``)."""
    out = dict(comments)
    if "muscle" in out:
        out["muscle_as_written"] = out["muscle"]
    out["muscle"] = muscle_of(name)
    return out


def read_record(header_path: str | os.PathLike) -> Recording:
    """One record as int16 ADC values plus its gain (ADC units per uV) and header comments."""
    header_path = Path(header_path)
    name = header_path.stem
    subject, label = parse_record_name(name, header_path)
    header = read_header(header_path)
    if header.n_sig != 1 or header.fmt[0] != "16":
        raise DataError(
            f"{header_path}: expected one format-16 signal, found {header.n_sig} signal(s) in format "
            f"{header.fmt}; only single-channel 16-bit records are supported"
        )
    data_path = header_path.with_name(header.file_name[0])
    if not data_path.is_file():
        raise DataError(f"{header_path}: its data file {data_path.name} is missing next to the header")
    offset_bytes = int(header.byte_offset[0] or 0)
    needed = offset_bytes + 2 * header.sig_len
    actual = data_path.stat().st_size
    if actual < needed:
        raise DataError(
            f"{data_path}: holds {actual} bytes but its header needs {needed} "
            f"({header.sig_len} samples from byte {offset_bytes}); the file is truncated"
        )
    raw = np.fromfile(data_path, dtype="<i2", count=header.sig_len, offset=offset_bytes)
    digital, clipped = calibrated(header_path, 0, header, raw)
    gain, unit = gain_per_uv(header_path, 0, header.adc_gain[0])
    return Recording(
        name=name,
        subject=subject,
        label=label,
        sample_rate=float(header.fs),
        digital=digital,
        adc_gain=gain,
        metadata=canonical_muscle(name, header_metadata(header)),
        unit=unit,
        clipped_samples=clipped,
    )


@register
class EMGLabSource(DataSource):
    """EMGLab N2001: labels and subjects from the record names (A = als, C = normal, M = myopathy)."""

    name = "emglab"
    version = 1
    fetched_as = "emglab-n2001"
    root_hint = "data.root=/path/to/emglab-n2001-bb or set EMGLAB_DIR"

    def records(self, options: SourceOptions) -> list[RecordEntry]:
        entries = []
        for header in list_records(self.root_of(options)):
            subject, label = parse_record_name(header.stem, header)
            entries.append(
                RecordEntry(header.stem, subject, label, header, {"muscle": muscle_of(header.stem)}, wfdb_files(header))
            )
        return entries

    def read(self, entry: RecordEntry, options: SourceOptions) -> Recording:
        return read_record(entry.location)
