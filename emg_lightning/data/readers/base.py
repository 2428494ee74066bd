"""What a data source is, and the registry of them: a new clinic's reader is one module here plus one YAML.

A source lists its records cheaply (name, subject, label and metadata such as muscle and side, from names, headers or
a manifest, without reading samples) and reads one record when asked. Everything else -- label harmonisation
(``data.label_map``), muscle selection (``data.muscles``), windowing, the cache -- is the same for every source and
lives in ``data/sources.py``. Labels are whatever the data calls its classes; ``data.classes`` chooses among them.

Recipe for a new source (see docs/guides/new-source.md): subclass ``DataSource``, give it a ``name``, a ``version``
(bump it whenever the reader's output changes: it is part of the window cache's key) and the two methods, decorate
it with ``@register``, import the module in ``readers/__init__.py``, and add ``conf/data/<name>.yaml``.
"""

from __future__ import annotations

import dataclasses
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from emg_lightning.data.fetch.sets import data_dir, fetched_root
from emg_lightning.data.records import Recording
from emg_lightning.runtime.errors import ConfigError, DataError


@dataclass(frozen=True)
class SourceOptions:
    """The reader settings of ``data.*``: where the records are and how they are labelled."""

    root: str | None = None
    pattern: str | None = None  # wfdb: regex on record names with groups subject and label
    manifest: str | None = None  # wfdb: CSV with record, subject, label
    channel: int | None = None  # which signal of a multi-channel record (None: the one signal; refused if several)
    synthetic: Mapping[str, Any] = field(default_factory=dict)
    sources: tuple[Mapping[str, Any], ...] = ()  # pooled: the sources read together, each with its own settings


@dataclass(frozen=True)
class RecordEntry:
    """One record a source can read, as listed before any sample is read."""

    name: str
    subject: str
    label: str
    location: Any  # what ``read`` needs: a file path, or the generator's indices
    metadata: Mapping[str, str] = field(default_factory=dict)  # muscle, side, ... as the source knows them
    files: tuple[Path, ...] = ()  # the files the record is read from (their sizes and times key the cache)


class DataSource(ABC):
    """One kind of data set. Subclasses set ``name`` and ``version`` and implement ``records`` and ``read``."""

    name: ClassVar[str]
    version: ClassVar[int] = 1  # of the reader's output: part of the window cache key
    fetched_as: ClassVar[str | None] = None  # the emg-data fetch set read when data.root is not set
    root_hint: ClassVar[str] = "data.root=/path/to/the/records"  # what to pass when data.root is not set

    @abstractmethod
    def records(self, options: SourceOptions) -> list[RecordEntry]:
        """Every record of the source with its subject and label; raise DataError naming what is wrong."""

    @abstractmethod
    def read(self, entry: RecordEntry, options: SourceOptions) -> Recording:
        """The samples of one listed record."""

    def identity(self, options: SourceOptions) -> dict[str, Any]:
        """What besides the listed records' files the windows depend on (e.g. the generator's settings)."""
        root = self.root_of(options) if options.root or self.fetched_as else None
        return {"root": str(root.resolve()) if root else None}

    def root_of(self, options: SourceOptions) -> Path:
        """``data.root``, else the verified fetched copy of ``fetched_as``; a ConfigError saying how to get one."""
        if options.root:
            return Path(options.root).expanduser()
        if self.fetched_as:
            folder = fetched_root(self.fetched_as)
            if folder is not None:
                return folder
            raise ConfigError(
                f"data.root is not set and {self.fetched_as} has not been fetched into {data_dir()}: run "
                f"`emg-data fetch {self.fetched_as}`, or pass {self.root_hint}"
            )
        raise ConfigError(f"data.root is not set: pass {self.root_hint}")


SOURCES: dict[str, DataSource] = {}


def register(cls: type[DataSource]) -> type[DataSource]:
    if cls.name in SOURCES:
        raise RuntimeError(f"two data sources are named {cls.name!r}")
    SOURCES[cls.name] = cls()
    return cls


def get_source(name: str) -> DataSource:
    if name not in SOURCES:
        raise ConfigError(f"data.source={name!r} is unknown; available: {', '.join(sorted(SOURCES))}")
    return SOURCES[name]


def file_identity(paths: list[Path]) -> list[tuple[str, int, int]]:
    """Names, sizes and modification times: a changed file changes the cache key."""
    out = []
    for path in paths:
        stat = os.stat(path)
        out.append((path.name, stat.st_size, stat.st_mtime_ns))
    return out


def wfdb_files(header: Path) -> tuple[Path, ...]:
    """A WFDB header and the files beside it that share its name (its data files)."""
    return tuple(sorted(header.parent.glob(header.stem + ".*")))


def relabel(entries: list[RecordEntry], label_map: Mapping[str, str] | None) -> list[RecordEntry]:
    """Labels renamed by ``data.label_map`` (``{als: neuropathy}``: two sets' names for one class made one)."""
    mapping = dict(label_map or {})
    return [dataclasses.replace(e, label=mapping.get(e.label, e.label)) for e in entries]


def normalise_muscle(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").split())


def select_muscles(entries: list[RecordEntry], muscles: Sequence[str] | None) -> list[RecordEntry]:
    """The records of the muscles named in ``data.muscles`` (case and ``_``/space insensitive); all when None."""
    if not muscles:
        return entries
    wanted = {normalise_muscle(m) for m in muscles}
    unknown = [e.name for e in entries if not e.metadata.get("muscle")]
    if unknown:
        raise DataError(
            f"record {unknown[0]} does not say which muscle it is from ({len(unknown)} such records): data.muscles "
            f"cannot select it; give a muscle column in data.manifest, or set data.muscles=null"
        )
    present = sorted({normalise_muscle(e.metadata["muscle"]) for e in entries})
    missing = sorted(wanted - set(present))
    if missing:
        raise DataError(f"data.muscles names {missing}, but the records are from {present}")
    return [e for e in entries if normalise_muscle(e.metadata["muscle"]) in wanted]


def selected_records(
    source: str,
    options: SourceOptions,
    label_map: Mapping[str, str] | None = None,
    muscles: Sequence[str] | None = None,
) -> list[RecordEntry]:
    """The records a run reads from one source: its listing, relabelled, then filtered by muscle."""
    return select_muscles(relabel(get_source(source).records(options), label_map), muscles)
