"""Feature sets a feature model reads (``data.features``): pure functions, no data and no cache.

Two kinds. A **window set** (``qemg``) describes one window in microvolts at the windows' rate. A **record set**
(``muap``) describes a whole record at its native rate -- the motor units found in it -- and every window of the
record carries the same vector. Sets join with ``+`` (``qemg+muap``: each window's qEMG features, then its record's
MUAP summary). A model that reads a record set predicts records: its window-level figures are not applicable. The
caches that store them are ``data/feature_cache.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from emg_lightning.features.qemg import QEMG_VERSION, qemg_feature_names, qemg_features
from emg_lightning.muap.features import MUAP_CODE_VERSION, RECORD_FEATURE_NAMES, record_muap_features
from emg_lightning.runtime.errors import ConfigError

# name -> (version, extractor(windows_uv, sample_rate), names(sample_rate))
FEATURE_SETS: dict[str, tuple[int, Callable[[np.ndarray, float], np.ndarray], Callable[[float], list[str]]]] = {
    "qemg": (QEMG_VERSION, qemg_features, qemg_feature_names),
}
# name -> (code version, extractor(record_uv, native_rate, clipped_samples), names)
RECORD_FEATURE_SETS: dict[str, tuple[str, Callable[..., np.ndarray], tuple[str, ...]]] = {
    "muap": (MUAP_CODE_VERSION, record_muap_features, RECORD_FEATURE_NAMES),
}


def feature_parts(name: str) -> list[str]:
    """The sets ``name`` joins (``qemg+muap`` -> [qemg, muap]), each known and named once; ConfigError otherwise."""
    parts = str(name).split("+")
    known = [*FEATURE_SETS, *RECORD_FEATURE_SETS]
    for part in parts:
        if part not in known:
            raise ConfigError(
                f"data.features={name!r}: {part!r} is unknown; available: {', '.join(known)}, joined with + "
                f"(e.g. qemg+muap), or null: windows"
            )
    if len(set(parts)) != len(parts):
        raise ConfigError(f"data.features={name!r} names a set twice: list each once")
    return parts


def describes_records(name: str | None) -> bool:
    """Whether feature set ``name`` includes a record set: a model reading it predicts whole records."""
    return name is not None and any(part in RECORD_FEATURE_SETS for part in feature_parts(name))


def feature_names(name: str, sample_rate: float) -> list[str]:
    """The columns of ``name``: each window set's names, each record set's prefixed ``<set>:``."""
    names: list[str] = []
    for part in feature_parts(name):
        if part in FEATURE_SETS:
            names += FEATURE_SETS[part][2](sample_rate)
        else:
            names += [f"{part}:{column}" for column in RECORD_FEATURE_SETS[part][2]]
    return names
