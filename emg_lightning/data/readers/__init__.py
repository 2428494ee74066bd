"""Readers turn recordings on disk (or generated) into ``Recording`` objects, one data source per module, each
registered by name in ``base.SOURCES`` (``data.source=<name>``). No torch, no Lightning."""

from emg_lightning.data.readers import algiers, emglab, pooled, wfdb_dir  # noqa: F401  (each registers its source)
from emg_lightning.data.readers.base import SOURCES, DataSource, RecordEntry, SourceOptions, get_source, register
from emg_lightning.data.readers.synthetic import source as _synthetic_source  # noqa: F401

__all__ = ["SOURCES", "DataSource", "RecordEntry", "SourceOptions", "get_source", "register"]
