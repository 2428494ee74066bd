"""Named data sources -> cached window tables. The one place that knows which reader serves which source."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from emg_lightning.data.cache import WindowTable, build_table, cached_table
from emg_lightning.data.readers import emglab, synthetic
from emg_lightning.data.windows import WindowSettings
from emg_lightning.errors import ConfigError

SOURCES = ("synthetic", "emglab")


def load_window_table(source: str, settings: WindowSettings, cache_dir: str | os.PathLike,
                      root: str | None = None, synthetic_spec: synthetic.SyntheticSpec | None = None) -> WindowTable:
    window_key = dataclasses.asdict(settings)
    if source == "synthetic":
        spec = synthetic_spec or synthetic.SyntheticSpec()
        key = {"source": source, "spec": dataclasses.asdict(spec), "generator": synthetic.GENERATOR_VERSION,
               "windows": window_key}
        return cached_table(source, key, lambda: build_table(synthetic.generate(spec), settings), cache_dir)
    if source == "emglab":
        if not root:
            raise ConfigError("data.root is not set: pass data.root=/path/to/emglab-n2001-bb or set EMGLAB_DIR")
        headers = emglab.list_records(root)
        files = []
        for header in headers:
            for path in (header, header.with_suffix(".bin")):
                if path.exists():
                    stat = path.stat()
                    files.append((path.name, stat.st_size, stat.st_mtime_ns))
        key = {"source": source, "root": str(Path(root).resolve()), "files": files, "windows": window_key}
        return cached_table(source, key, lambda: build_table(map(emglab.read_record, headers), settings), cache_dir)
    raise ConfigError(f"data.source={source!r} is unknown; available: {', '.join(SOURCES)}")
