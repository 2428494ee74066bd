"""Any folder of WFDB records (one channel used), labelled by a filename pattern or by a manifest CSV.

- Pattern: a regular expression matched against the record name, with named groups ``subject`` and ``label``; the
  matched label text is the class name, or is renamed by ``data.label_map`` (e.g. ``{A: als, C: normal}``).
- Manifest: a CSV with the columns ``record``, ``subject``, ``label`` (any class names) and optionally ``muscle`` and
  ``side``; records absent from it are ignored, and records it names that are not in the folder are an error.

Header comments ``#key: value`` (``#muscle: deltoid``) are kept as the record's metadata.

Samples are digital values (``physical=False``) so that saturation never becomes NaN.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from pathlib import Path

import numpy as np
import wfdb

from emg_lightning.data.readers.base import DataSource, RecordEntry, SourceOptions, register, wfdb_files
from emg_lightning.data.records import Recording
from emg_lightning.runtime.errors import DataError

# The header's gain is ADC units per physical unit; windows are kept in ADC units per microvolt. Units are matched
# case-insensitively, with u, µ (micro sign) or μ (Greek mu) for micro: real headers write uV, µV, μV, mv, MV
# (PhysioNet's emgdb: 10000/mv), and nobody means megavolts.
UNITS_PER_UV = {"uv": 1.0, "µv": 1.0, "μv": 1.0, "mv": 1e-3, "v": 1e-6}
# WFDB's documented default when a header gives no unit; the unit recorded for such a record says it was assumed
DEFAULT_UNIT = "mV"
ASSUMED_UNIT = f"{DEFAULT_UNIT} (assumed: the header gives no unit, WFDB's default)"

log = logging.getLogger(__name__)


# The bits of each WFDB storage format, when the header gives no ADC resolution
FORMAT_BITS = {"8": 8, "80": 8, "160": 16, "16": 16, "61": 16, "212": 12, "310": 10, "311": 10, "24": 24, "32": 32}


def header_gain_field(header: Path, channel: int) -> str:
    """The gain field of the header's signal line ``channel`` as written (``13.107/uV``, ``2(5)/uV``), or ""."""
    try:
        lines = [
            line
            for line in header.read_text(errors="replace").splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
    except OSError as exc:
        raise DataError(f"{header}: cannot be read ({exc})") from exc
    fields = lines[1 + channel].split() if len(lines) > 1 + channel else []
    return fields[2] if len(fields) > 2 else ""


def header_unit(header: Path, channel: int) -> str | None:
    """The unit written after the gain in the header's signal line ``channel`` (``13.107/uV``), or None."""
    gain = header_gain_field(header, channel)
    return gain.split("/", 1)[1].strip() if "/" in gain else None


def calibrated(header: Path, channel: int, meta: wfdb.Record, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``raw`` ADC values of signal ``channel`` with the header's baseline removed (physical = (raw - baseline) /
    gain), as int16, and the samples at the ADC's limits (from its resolution and zero; None when they are the
    int16 extremes). Refused, naming the header: no gain or gain 0 (WFDB's "uncalibrated": its default 200 units
    per mV is a placeholder, not the amplifier's), and values that the baseline shift takes beyond 16 bits."""
    field = header_gain_field(header, channel)
    number = field.split("/", 1)[0].split("(", 1)[0]
    try:
        stated = float(number) if number else 0.0
    except ValueError:
        raise DataError(f"{header}: the gain field {field!r} of signal {channel} is not a number") from None
    if stated == 0:
        raise DataError(
            f"{header}: signal {channel} gives {'gain 0' if number else 'no gain'}, WFDB's 'uncalibrated' (its "
            f"default of 200 units per mV is a placeholder): write the amplifier's gain in the header, e.g. 13.107/uV"
        )
    baseline = int(meta.baseline[channel] or 0)
    bits = int((meta.adc_res or [0])[channel] or FORMAT_BITS.get(str(meta.fmt[channel]), 16))
    zero = int((meta.adc_zero or [0])[channel] or 0)
    low, high = zero - 2 ** (bits - 1), zero + 2 ** (bits - 1) - 1
    shifted = raw.astype(np.int64) - baseline
    if len(shifted) and (shifted.min() < -32768 or shifted.max() > 32767):
        raise DataError(
            f"{header}: signal {channel}'s values less its baseline {baseline} exceed 16 bits; only records whose "
            f"baseline-corrected values fit 16 bits are supported"
        )
    extremes = (low, high) == (-32768, 32767) and baseline == 0
    return shifted.astype(np.int16), None if extremes else (raw <= low) | (raw >= high)


def gain_per_uv(header: Path, channel: int, adc_gain: float) -> tuple[float, str]:
    """(ADC units per microvolt, the unit as read or assumed) for one signal of a WFDB header."""
    unit = header_unit(header, channel)
    shown = unit
    if unit is None:
        unit, shown = DEFAULT_UNIT, ASSUMED_UNIT
    factor = UNITS_PER_UV.get(unit.lower())
    if factor is None:
        raise DataError(f"{header}: signal unit {unit!r} is not a voltage; supported: uV, µV, μV, mV, V (any case)")
    return float(adc_gain) * factor, shown


def say_assumed_units(units: dict[str, int], where: str) -> None:
    """Say on the console, not only in a CSV, when records' gains were read in an assumed unit: a header without a
    unit whose amplifier's gain is really per uV would make every amplitude 1000 times too small."""
    n = units.get(ASSUMED_UNIT, 0)
    if n:
        log.warning(
            "%s: %d record header(s) give no unit: their gain is read as per %s (WFDB's default); if it is per uV, "
            "write the unit after the gain in the header (e.g. 13.107/uV)",
            where,
            n,
            DEFAULT_UNIT,
        )


def list_headers(root: str | os.PathLike, kind: str = "WFDB") -> list[Path]:
    """Header files of a folder, sorted; a clear error when there is nothing to read."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(
            f"{kind} directory {root} does not exist: set data.root (or EMGLAB_DIR for EMGLab) to the "
            f"folder holding the .hea/.bin files"
        )
    headers = sorted(root.glob("*.hea"))
    if not headers:
        raise DataError(
            f"{kind} directory {root} holds no .hea header files: point data.root at the folder with "
            f"the .hea/.bin pairs"
        )
    return headers


METADATA_COLUMNS = ("muscle", "side")


def read_manifest(path: str | os.PathLike) -> dict[str, tuple[str, str, dict[str, str]]]:
    """record -> (subject, label, metadata) from a CSV with columns record, subject, label (+ muscle, side)."""
    path = Path(path).expanduser()
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(
            f"manifest {path} cannot be read ({exc}): give data.manifest as a CSV file with the "
            f"columns record, subject, label"
        ) from exc
    if not rows or not {"record", "subject", "label"} <= set(rows[0]):
        raise DataError(f"manifest {path} needs a header row with the columns record, subject, label")
    manifest, line_of = {}, {}
    for line, row in enumerate(rows, start=2):
        label = (row["label"] or "").strip()
        subject = (row["subject"] or "").strip()
        record = (row["record"] or "").strip()
        if not (label and subject and record):
            raise DataError(f"manifest {path}, line {line}: record, subject and label must all be given")
        if record in manifest:
            raise DataError(
                f"manifest {path}: record {record} is listed twice, on lines {line_of[record]} and {line}: "
                f"keep one row per record"
            )
        metadata = {k: (row.get(k) or "").strip() for k in METADATA_COLUMNS if (row.get(k) or "").strip()}
        manifest[record], line_of[record] = (subject, label, metadata), line
    return manifest


def label_records(headers: list[Path], pattern: str | None, manifest: str | None) -> list[tuple[Path, str, str]]:
    """(header, subject, label) for every record the pattern or manifest labels (labels as written there)."""
    if manifest:
        table = read_manifest(manifest)
        by_name = {h.stem: h for h in headers}
        missing = sorted(set(table) - set(by_name))
        if missing:
            raise DataError(
                f"manifest {manifest} names records absent from the folder: {missing[:5]}"
                f"{' ...' if len(missing) > 5 else ''}"
            )
        return [(by_name[name], subject, label) for name, (subject, label, _) in sorted(table.items())]
    if not pattern:
        raise DataError(
            "a WFDB folder needs labels: set data.pattern (regex with groups subject and label) "
            "or data.manifest (CSV with record, subject, label)"
        )
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise DataError(f"data.pattern {pattern!r} is not a valid regular expression ({exc})") from exc
    if not {"subject", "label"} <= set(regex.groupindex):
        raise DataError(f"data.pattern {pattern!r} needs the named groups (?P<subject>...) and (?P<label>...)")
    labelled = []
    for header in headers:
        match = regex.fullmatch(header.stem)
        if not match:
            raise DataError(f"{header}: record name {header.stem!r} does not match data.pattern {pattern!r}")
        if not match["label"] or not match["subject"]:
            raise DataError(f"{header}: data.pattern {pattern!r} matched an empty subject or label")
        labelled.append((header, match["subject"], match["label"]))
    return labelled


def read_record(header: Path, subject: str, label: str, channel: int | None = None) -> Recording:
    """Signal ``channel`` of a WFDB record in physical units (baseline removed, gain and unit from the header);
    ``channel`` None reads a one-signal record and refuses to guess among several."""
    base = str(header.with_suffix(""))
    meta = read_header(header)
    if channel is None:
        if meta.n_sig != 1:
            names = ", ".join(f"{k}: {name}" for k, name in enumerate(meta.sig_name or []))
            raise DataError(
                f"{header}: the record has {meta.n_sig} signals ({names}): say which is the needle EMG with "
                f"data.channel=K (emg-predict / emg-eval / emg-muap: --channel K)"
            )
        channel = 0
    if not 0 <= channel < meta.n_sig:
        raise DataError(f"{header}: data.channel={channel} but the record has {meta.n_sig} signal(s)")
    data_path = header.with_name(meta.file_name[channel])
    if not data_path.is_file():
        raise DataError(f"{header}: its data file {data_path.name} is missing next to the header")
    try:
        record = wfdb.rdrecord(base, channels=[channel], physical=False)
    except Exception as exc:
        raise DataError(
            f"{data_path}: cannot be read as the header describes ({exc}); the file may be truncated"
        ) from exc
    raw = record.d_signal[:, 0]
    if len(raw) < meta.sig_len:
        raise DataError(
            f"{data_path}: holds {len(raw)} samples but its header says {meta.sig_len}; the file is truncated"
        )
    if raw.min() < -32768 or raw.max() > 32767:
        raise DataError(f"{data_path}: samples exceed 16 bits; only formats of up to 16 bits are supported")
    digital, clipped = calibrated(header, channel, meta, raw)
    gain, unit = gain_per_uv(header, channel, meta.adc_gain[channel])
    return Recording(
        name=header.stem,
        subject=subject,
        label=label,
        sample_rate=float(meta.fs),
        digital=digital,
        adc_gain=gain,
        metadata=header_metadata(meta),
        unit=unit,
        clipped_samples=clipped,
    )


def read_header(header: Path) -> wfdb.Record:
    try:
        return wfdb.rdheader(str(header.with_suffix("")))
    except Exception as exc:  # wfdb raises many types for malformed headers
        raise DataError(f"{header}: cannot parse the WFDB header ({exc}); check the file is a WFDB .hea") from exc


def header_metadata(meta: wfdb.Record) -> dict[str, str]:
    """``#key: value`` header comments (age, diagnosis, muscle, ...) as a dict."""
    metadata = {}
    for comment in meta.comments or []:
        key, sep, value = comment.partition(":")
        if sep:
            metadata[key.strip()] = value.strip()
    return metadata


@register
class WFDBFolderSource(DataSource):
    """Any folder of WFDB records, labelled by ``data.pattern`` or ``data.manifest``."""

    name = "wfdb"
    root_hint = "data.root=/path/to/wfdb/folder"
    version = 1

    def records(self, options: SourceOptions) -> list[RecordEntry]:
        headers = list_headers(self.root_of(options))
        extra = read_manifest(options.manifest) if options.manifest else {}
        entries = []
        for header, subject, label in label_records(headers, options.pattern, options.manifest):
            metadata = {**header_metadata(read_header(header)), **extra.get(header.stem, ("", "", {}))[2]}
            entries.append(RecordEntry(header.stem, subject, label, header, metadata, wfdb_files(header)))
        return entries

    def read(self, entry: RecordEntry, options: SourceOptions) -> Recording:
        return read_record(entry.location, entry.subject, entry.label, options.channel)
