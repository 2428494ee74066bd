"""Named data sources -> cached window tables. The one place that knows which reader serves which source."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from emg_lightning.data.cache import WindowTable, build_table, cached_table
from emg_lightning.data.readers import emglab, synthetic, wfdb_dir
from emg_lightning.data.windows import WindowSettings
from emg_lightning.errors import ConfigError

SOURCES = ("synthetic", "emglab", "wfdb")


def _file_identity(headers: list[Path]) -> list[tuple[str, int, int]]:
    """Names, sizes and modification times of every header and data file: a changed file changes the key."""
    files = []
    for header in headers:
        for path in sorted(header.parent.glob(header.stem + ".*")):
            stat = path.stat()
            files.append((path.name, stat.st_size, stat.st_mtime_ns))
    return files


def load_window_table(
    source: str,
    settings: WindowSettings,
    cache_dir: str | os.PathLike,
    root: str | None = None,
    synthetic_spec: synthetic.SyntheticSpec | None = None,
    pattern: str | None = None,
    label_map: dict[str, str] | None = None,
    manifest: str | None = None,
    channel: int = 0,
    allow_mixed_rates: bool = True,
) -> WindowTable:
    window_key = settings.cache_key()
    if source == "synthetic":
        spec = synthetic_spec or synthetic.SyntheticSpec()
        key = {
            "source": source,
            "spec": dataclasses.asdict(spec),
            "generator": synthetic.GENERATOR_VERSION,
            "windows": window_key,
        }
        return cached_table(source, key, lambda: build_table(synthetic.generate(spec), settings), cache_dir)
    if source == "emglab":
        if not root:
            raise ConfigError("data.root is not set: pass data.root=/path/to/emglab-n2001-bb or set EMGLAB_DIR")
        headers = emglab.list_records(root)
        key = {
            "source": source,
            "root": str(Path(root).resolve()),
            "files": _file_identity(headers),
            "windows": window_key,
            "allow_mixed_rates": allow_mixed_rates,
        }
        records = map(emglab.read_record, headers)
        return cached_table(source, key, lambda: build_table(records, settings, allow_mixed_rates), cache_dir)
    if source == "wfdb":
        if not root:
            raise ConfigError("data.root is not set: pass data.root=/path/to/wfdb/folder")
        labelled = wfdb_dir.label_records(wfdb_dir.list_headers(root), pattern, label_map, manifest)
        headers = [h for h, _, _ in labelled]
        key = {
            "source": source,
            "root": str(Path(root).resolve()),
            "files": _file_identity(headers),
            "labels": [(h.name, s, label) for h, s, label in labelled],
            "channel": channel,
            "windows": window_key,
        }
        records = (wfdb_dir.read_record(h, s, label, channel) for h, s, label in labelled)
        return cached_table(source, key, lambda: build_table(records, settings, allow_mixed_rates), cache_dir)
    raise ConfigError(f"data.source={source!r} is unknown; available: {', '.join(SOURCES)}")
