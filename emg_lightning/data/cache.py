"""Window tables built once, stored on disk, memory-mapped on every later use.

A table lives in ``<cache_dir>/<name>-<key>/``: ``windows.npy`` (int16 ADC units, shape (n_windows, samples)) and
``table.json`` (one row per window: record, subject, label, window index, native start sample; plus the build
summary). The key hashes everything the windows depend on: reader settings, window settings, the source files'
names, sizes and modification times (or the generator's settings and version). The directory is written under a
temporary name and renamed when complete, so an interrupted build is never mistaken for a finished one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emg_lightning.data.records import Recording
from emg_lightning.data.windows import WindowSettings, window_record
from emg_lightning.runtime.errors import DataError
from emg_lightning.runtime.files import user_umask

log = logging.getLogger(__name__)

# 2: the summary holds native_rates_hz, records_at_other_rates and units, and labels were checked while building
TABLE_FORMAT = 2
COLUMNS = ("record", "subject", "label", "window", "start_sample")


@dataclass
class WindowTable:
    """All windows of a data set and who they belong to. ``windows`` is usually a read-only memmap."""

    windows: np.ndarray
    columns: dict[str, np.ndarray]
    adc_gain: float  # ADC units per uV
    sample_rate: float  # of the windows
    summary: dict
    directory: Path | None = None  # where the cache keeps it (and what is computed from it); None: in memory only

    def __len__(self) -> int:
        return len(self.windows)


def cache_key(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_record(record: Recording, seen: dict[str, Recording], subject_of: dict[str, Recording]) -> None:
    """One row per record and one label per subject: a second row or a second label names both records."""
    if record.name in seen:
        first = seen[record.name]
        raise DataError(
            f"record {record.name} appears twice (subject {first.subject}, {first.label}; subject {record.subject}, "
            f"{record.label}): keep one row per record"
        )
    seen[record.name] = record
    first = subject_of.setdefault(record.subject, record)
    if first.label != record.label:
        raise DataError(
            f"subject {record.subject} has records of two labels: {first.name} ({first.label}) and {record.name} "
            f"({record.label}): a subject has one diagnosis; fix its labels (manifest or data.pattern)"
        )


def build_table(records: Iterable[Recording], settings: WindowSettings, allow_mixed_rates: bool = True) -> WindowTable:
    """Window every record; count dropped windows and skipped records by reason.

    Refused, naming the record: a record seen twice, a subject with two labels, resampling above a record's own rate
    (no invented bandwidth), and -- unless ``allow_mixed_rates`` -- a record whose rate differs from the others'."""
    chunks, columns = [], {c: [] for c in COLUMNS}
    dropped: Counter = Counter()
    gains, skipped = set(), []
    rates: Counter = Counter()
    rate_of: dict[str, float] = {}
    seen: dict[str, Recording] = {}
    subject_of: dict[str, Recording] = {}
    units: Counter = Counter()
    saturated_records: dict[str, int] = {}
    record_metadata: dict[str, dict[str, str]] = {}
    n_records = 0
    for record in records:
        n_records += 1
        check_record(record, seen, subject_of)
        gains.add(record.adc_gain)
        rates[record.sample_rate] += 1
        rate_of[record.name] = record.sample_rate
        units[record.unit] += 1
        if settings.sample_rate is not None and settings.sample_rate > record.sample_rate:
            raise DataError(
                f"record {record.name} is recorded at {record.sample_rate:g} Hz: data.sample_rate="
                f"{settings.sample_rate:g} would invent bandwidth above its {record.sample_rate / 2:g} Hz Nyquist "
                f"frequency; choose data.sample_rate <= {record.sample_rate:g}"
            )
        if len(rates) > 1 and (settings.sample_rate is None or not allow_mixed_rates):
            others = sorted(set(rates) - {record.sample_rate})
            what = (
                "set data.sample_rate to resample all"
                if settings.sample_rate is None
                else "this source's records share one rate by definition: check that header, or set "
                "data.allow_mixed_rates=true to resample each record from its own rate"
            )
            raise DataError(
                f"record {record.name} has sampling rate {record.sample_rate:g} Hz, others "
                f"{', '.join(f'{r:g}' for r in others)} Hz: {what}"
            )
        if len(gains) > 1:  # windows are stored in ADC units with one gain per table
            raise DataError(
                f"record {record.name} has ADC gain {record.adc_gain}/uV, others "
                f"{sorted(gains - {record.adc_gain})}: mixed gains are not supported"
            )
        at_limits = int(np.count_nonzero(record.clipped))
        if at_limits:
            saturated_records[record.name] = at_limits
        record_metadata[record.name] = dict(record.metadata)
        result = window_record(record, settings)
        dropped.update(result.dropped)
        if len(result.windows) == 0 and not result.dropped:
            skipped.append(record.name)
            log.warning(
                "record %s (%.2f s) is shorter than one %.2f s window: skipped",
                record.name,
                record.duration_s,
                settings.window_s,
            )
            continue
        n = len(result.windows)
        chunks.append(result.windows)
        columns["record"] += [record.name] * n
        columns["subject"] += [record.subject] * n
        columns["label"] += [record.label] * n
        columns["window"] += result.window_index.tolist()
        columns["start_sample"] += result.start_sample.tolist()
    if not chunks:
        raise DataError(
            "no window survived: every record is shorter than data.window_s or was dropped by the "
            "quality rules (data.min_std_uv, data.max_saturated_fraction)"
        )
    native_rate = rates.most_common(1)[0][0]
    windows = np.concatenate(chunks)
    summary = {
        "records": n_records,
        "native_rates_hz": {f"{r:g}": n for r, n in sorted(rates.items())},
        "records_at_other_rates": {name: r for name, r in rate_of.items() if r != native_rate},
        "units": dict(units),
        "records_skipped_short": skipped,
        "windows": int(len(windows)),
        "windows_dropped": dict(sorted(dropped.items())),
        "native_rate_hz": native_rate,
        "saturated_samples_per_record": saturated_records,
        "record_metadata": record_metadata,
    }
    log.info(
        "%d records -> %d windows; dropped by the quality rules: %s; records shorter than a window: %d",
        n_records,
        len(windows),
        dict(dropped) or "none",
        len(skipped),
    )
    return WindowTable(
        windows,
        {k: np.asarray(v) for k, v in columns.items()},
        next(iter(gains)),
        settings.output_rate(native_rate),
        summary,
    )


def _save(table: WindowTable, directory: Path) -> None:
    np.save(directory / "windows.npy", table.windows)
    meta = {
        "format": TABLE_FORMAT,
        "n_windows": len(table),
        "adc_gain": table.adc_gain,
        "sample_rate": table.sample_rate,
        "summary": table.summary,
        "columns": {k: v.tolist() for k, v in table.columns.items()},
    }
    (directory / "table.json").write_text(json.dumps(meta))


def _load(directory: Path) -> WindowTable:
    meta = json.loads((directory / "table.json").read_text())
    if meta.get("format") != TABLE_FORMAT:
        raise ValueError(f"table format {meta.get('format')} != {TABLE_FORMAT}")
    windows = np.load(directory / "windows.npy", mmap_mode="r")
    if windows.dtype != np.int16 or windows.ndim != 2 or len(windows) != meta["n_windows"]:
        raise ValueError("windows.npy does not match table.json")
    columns = {k: np.asarray(v) for k, v in meta["columns"].items()}
    if set(columns) != set(COLUMNS) or any(len(v) != len(windows) for v in columns.values()):
        raise ValueError("table.json columns do not match windows.npy")
    return WindowTable(windows, columns, meta["adc_gain"], meta["sample_rate"], meta["summary"], directory)


def cached_table(
    name: str, key_payload: dict, build: Callable[[], WindowTable], cache_dir: str | os.PathLike
) -> WindowTable:
    """Load the table for ``key_payload`` from the cache, or build it, store it atomically and load it."""
    cache_dir = Path(cache_dir).expanduser()
    directory = cache_dir / f"{name}-{cache_key(key_payload)}"
    if directory.is_dir():
        try:
            table = _load(directory)
            log.info("window cache hit: %s (%d windows)", directory, len(table))
            return table
        except Exception as exc:  # corrupt or stale: never trust it
            log.warning("window cache %s is unreadable (%s): rebuilding", directory, exc)
            shutil.rmtree(directory, ignore_errors=True)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"cannot create the cache directory {cache_dir} ({exc}): set paths.cache_dir "
            f"(or EMG_CACHE_DIR) to a writable folder"
        ) from exc
    log.info("building window cache %s", directory)
    table = build()
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=cache_dir))
    staging.chmod(0o777 & ~user_umask())  # mkdtemp makes 0700: a shared cache must be readable by the group
    try:
        _save(table, staging)
        (staging / "key.json").write_text(json.dumps(key_payload, sort_keys=True, default=str, indent=1))
        try:
            os.rename(staging, directory)
        except OSError:  # another process finished the same build first: use theirs
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _load(directory)
