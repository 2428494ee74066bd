"""Per-window feature sets: pure functions of a window in microvolts and its rate (no data, no cache). The feature
cache that stores them beside the windows is ``data/feature_cache.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from emg_lightning.features.qemg import QEMG_VERSION, qemg_feature_names, qemg_features
from emg_lightning.runtime.errors import ConfigError

# name -> (version, extractor(windows_uv, sample_rate), names(sample_rate))
FEATURE_SETS: dict[str, tuple[int, Callable[[np.ndarray, float], np.ndarray], Callable[[float], list[str]]]] = {
    "qemg": (QEMG_VERSION, qemg_features, qemg_feature_names),
}


def feature_names(name: str, sample_rate: float) -> list[str]:
    return FEATURE_SETS[known_feature_set(name)][2](sample_rate)


def known_feature_set(name: str) -> str:
    if name not in FEATURE_SETS:
        raise ConfigError(f"data.features={name!r} is unknown; available: {', '.join(FEATURE_SETS)} (or null)")
    return name
