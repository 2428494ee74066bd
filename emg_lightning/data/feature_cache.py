"""Features computed once and cached, so that every later run (each fold of a CV) reads them back.

- ``window_features(table, "qemg")``: (n_windows, n_features) float32 from the table's windows in microvolts at its
  rate, stored as ``<table folder>/features-qemg-v<version>.npy``.
- ``RecordFeatures``: a record set's vector (``muap``) of each record at its native rate, stored per record as
  ``<cache_dir>/record-features/<set>/<key>.npy``, the key hashing the set's code version, the reader's version and
  settings, and the record's files (names, sizes, modification times): shared by every window setting.
- ``feature_matrix(table, "qemg+muap", records)``: the sets side by side, one row per window (a record set's
  vector repeated on each of its record's windows).

Everything is written under a temporary name, then renamed: an interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from emg_lightning.data.cache import WindowTable, cache_key
from emg_lightning.data.readers import RecordEntry, SourceOptions, get_source
from emg_lightning.data.readers.base import file_identity
from emg_lightning.data.records import Recording
from emg_lightning.features import FEATURE_SETS, RECORD_FEATURE_SETS, feature_parts
from emg_lightning.runtime.errors import ConfigError, DataError
from emg_lightning.runtime.files import user_umask

log = logging.getLogger(__name__)

_CHUNK = 256  # windows per extractor call: bounded memory for the float64 copies


def window_features(table: WindowTable, name: str) -> np.ndarray:
    """Features ``name`` of every window of ``table``: loaded from the cache when computed before."""
    if name not in FEATURE_SETS:
        feature_parts(name)  # an unknown name: the one-line refusal
        raise ConfigError(f"data.features={name!r} is not a window feature set; available: {', '.join(FEATURE_SETS)}")
    version, extract, names = FEATURE_SETS[name]
    width = len(names(table.sample_rate))
    path = table.directory / f"features-{name}-v{version}.npy" if table.directory is not None else None
    if path is not None and path.is_file():
        try:
            features = np.load(path, mmap_mode="r")
            if features.shape == (len(table), width) and features.dtype == np.float32:
                return features
            log.warning("%s has shape %s, expected %s: recomputing", path, features.shape, (len(table), width))
        except (OSError, ValueError) as exc:
            log.warning("%s is unreadable (%s): recomputing", path, exc)
    log.info("computing %s features of %d windows (once; cached beside the windows)", name, len(table))
    features = np.concatenate(
        [
            extract(np.asarray(table.windows[start : start + _CHUNK], dtype=np.float64) / table.adc_gain,
                    table.sample_rate)
            for start in range(0, len(table), _CHUNK)
        ]
    )  # fmt: skip
    if not np.isfinite(features).all():
        bad = int(np.flatnonzero(~np.isfinite(features).all(axis=1))[0])
        raise ValueError(f"{name} features of window {bad} are not finite: a bug in the extractor, please report it")
    if path is not None:
        try:
            _save_atomically(path, features)
        except OSError as exc:  # a read-only shared cache: use them without keeping them
            log.warning("cannot store %s (%s): features used without caching", path, exc)
    return features


class RecordFeatures:
    """The record sets' vectors of a source's records, read from the cache or computed once (a progress bar over
    the records) and stored."""

    def __init__(self, source: str, options: SourceOptions, entries: list[RecordEntry], cache_dir: str | Path) -> None:
        self.reader, self.options = get_source(source), options
        self.entries = {entry.name: entry for entry in entries}
        self.identity = {"source": source, "reader_version": self.reader.version, **self.reader.identity(options),
                         "channel": options.channel}  # fmt: skip
        self.cache_dir = Path(cache_dir).expanduser() / "record-features"

    def vectors(self, name: str, records: list[str]) -> dict[str, np.ndarray]:
        """{record: vector of set ``name``} for ``records``; DataError naming a record the listing lacks."""
        version, extract, columns = RECORD_FEATURE_SETS[name]
        out, missing = {}, []
        for record in records:
            path = self._path(name, version, record)
            vector = _load_vector(path, len(columns))
            if vector is None:
                missing.append((record, path))
            else:
                out[record] = vector
        if missing:
            from tqdm import tqdm

            log.info("computing %s features of %d records (once; cached in %s)", name, len(missing), self.cache_dir)
            for record, path in tqdm(missing, desc=f"{name} features", unit="record", disable=len(missing) < 2):
                out[record] = self._compute(record, extract)
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    _save_atomically(path, out[record])
                except OSError as exc:  # a read-only shared cache: use them without keeping them
                    log.warning("cannot store %s (%s): features used without caching", path, exc)
        return out

    def _path(self, name: str, version: str, record: str) -> Path:
        entry = self.entries.get(record)
        if entry is None:
            raise DataError(
                f"record {record} is in the window table but not in the source's listing: rebuild the cache"
            )
        key = cache_key({**self.identity, "set": name, "code": version, "record": entry.name,
                         "location": str(entry.location), "files": file_identity(list(entry.files))})  # fmt: skip
        return self.cache_dir / name / f"{key}.npy"

    def _compute(self, record: str, extract) -> np.ndarray:
        entry = self.entries[record]
        recording = self.reader.read(entry, self.options)
        try:
            vector = extract(recording.microvolts, recording.sample_rate, recording.clipped)
        except DataError as exc:
            raise DataError(f"record {record}: {exc}") from None
        if np.isinf(vector).any():
            raise DataError(f"record {record}: an infinite feature value: a bug in the extractor, please report it")
        return vector


class OneRecordFeatures:
    """The record sets' vectors of one recording in memory (emg-predict, emg-eval): computed, not cached."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording

    def vectors(self, name: str, records: list[str]) -> dict[str, np.ndarray]:
        extract = RECORD_FEATURE_SETS[name][1]
        r = self.recording
        vector = extract(r.microvolts, r.sample_rate, r.clipped)
        return dict.fromkeys(records, vector)


def feature_matrix(
    table: WindowTable, name: str, records: RecordFeatures | OneRecordFeatures | None = None
) -> np.ndarray:
    """Feature set ``name`` (window and record sets joined by ``+``) of every window of ``table``, float32 (a
    record set's per-unit values NaN where its record has no unit: see ``muap/features.py``)."""
    parts = feature_parts(name)
    if parts == [name] and name in FEATURE_SETS:
        return window_features(table, name)  # one window set: the memory-mapped cache itself
    blocks = []
    for part in parts:
        if part in FEATURE_SETS:
            blocks.append(np.asarray(window_features(table, part), dtype=np.float32))
            continue
        if records is None:
            raise DataError(f"data.features={name} includes the record set {part}, which needs the records themselves")
        record_of_window = table.columns["record"]
        names = sorted(set(record_of_window.tolist()))
        vectors = records.vectors(part, names)
        rows = np.stack([vectors[r] for r in names]) if names else np.zeros((0, len(RECORD_FEATURE_SETS[part][2])))
        blocks.append(rows[np.searchsorted(names, record_of_window)].astype(np.float32))
    return np.concatenate(blocks, axis=1) if blocks else np.zeros((len(table), 0), dtype=np.float32)


def _load_vector(path: Path, width: int) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        vector = np.load(path)
    except (OSError, ValueError) as exc:
        log.warning("%s is unreadable (%s): recomputing", path, exc)
        return None
    return vector if vector.shape == (width,) and vector.dtype == np.float64 else None


def _save_atomically(path: Path, features: np.ndarray) -> None:
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npy", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            np.save(file, features)
        os.chmod(staging, 0o666 & ~user_umask())
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
