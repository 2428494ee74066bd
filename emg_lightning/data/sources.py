"""A data source's records -> one cached window table: label harmonisation and muscle selection, the same for every
source (the sources themselves are registered in ``data/readers``)."""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from emg_lightning.data.cache import WindowTable, build_table, cached_table
from emg_lightning.data.readers import RecordEntry, SourceOptions, get_source
from emg_lightning.data.readers.base import file_identity, selected_records
from emg_lightning.data.readers.wfdb_dir import say_assumed_units
from emg_lightning.data.records import Recording
from emg_lightning.data.windows import WindowSettings
from emg_lightning.runtime.errors import DataError
from emg_lightning.runtime.files import source_version

# The code every window table depends on (the reader's own module is added per source): a change to how records are
# windowed, resampled, filtered or stored gives every table a new cache key
WINDOW_CODE_VERSION = source_version(
    *(Path(__file__).with_name(name) for name in ("windows.py", "cache.py", "records.py", "sources.py"))
)


def load_window_table(
    source: str,
    settings: WindowSettings,
    cache_dir: str | os.PathLike,
    options: SourceOptions,
    label_map: Mapping[str, str] | None = None,
    muscles: Sequence[str] | None = None,
    allow_mixed_rates: bool = True,
) -> WindowTable:
    """The window table of ``source``'s selected records, from the cache or built once and stored."""
    reader = get_source(source)
    entries = selected_records(source, options, label_map, muscles)
    if not entries:
        raise DataError(f"data.source={source} lists no record under {options.root}")
    files = [path for entry in entries for path in entry.files]
    key = {
        "source": source,
        "reader_version": reader.version,
        "code": WINDOW_CODE_VERSION + source_version(Path(inspect.getfile(type(reader)))),
        **reader.identity(options),
        "records": [(e.name, e.subject, e.label, sorted(e.metadata.items())) for e in entries],
        "files": file_identity(files),
        "channel": options.channel,
        "windows": settings.cache_key(),
        "allow_mixed_rates": allow_mixed_rates,
    }

    def as_listed(entry: RecordEntry) -> Recording:
        """The record with the listing's label (renamed), subject and metadata (a manifest's muscle wins)."""
        record = reader.read(entry, options)
        metadata = {**record.metadata, **entry.metadata}
        return dataclasses.replace(record, label=entry.label, subject=entry.subject, metadata=metadata)

    def build() -> WindowTable:
        return build_table(map(as_listed, entries), settings, allow_mixed_rates)

    table = cached_table(source, key, build, cache_dir)
    say_assumed_units(table.summary.get("units", {}), f"data.source={source}")
    return table
