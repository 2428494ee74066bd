"""Per-window features computed once and cached beside the windows they describe.

``window_features(table, "qemg")`` returns (n_windows, n_features) float32, computed from the table's windows in
microvolts at its sampling rate and stored as ``<table folder>/features-qemg-v<version>.npy`` (written under a
temporary name, then renamed), so every later run (each fold of a CV) memory-maps it instead of recomputing.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from emg_lightning.data.cache import WindowTable
from emg_lightning.features import FEATURE_SETS, known_feature_set
from emg_lightning.runtime.files import user_umask

log = logging.getLogger(__name__)

_CHUNK = 256  # windows per extractor call: bounded memory for the float64 copies


def window_features(table: WindowTable, name: str) -> np.ndarray:
    """Features ``name`` of every window of ``table``: loaded from the cache when computed before."""
    version, extract, names = FEATURE_SETS[known_feature_set(name)]
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
