"""``data.source=pooled``: several sources read as one data set (``data.sources``), e.g. two clinics for pooled
training or a cross-clinic CV.

Each part is a source with its own settings (``{name: n2001, source: emglab, root: ..., label_map: {als:
neuropathy}, muscles: [...]}``); its records and subjects are namespaced by the part's name (``n2001:A01``), so
that patient ids of different clinics never merge into one person, and each record's metadata says its part
(``part``). One window table holds one ADC gain: every part's samples are requantised to the smallest gain among
the parts (the coarsest step; N2001's 0.076 uV steps become the Algiers set's 0.78 uV, far below either clinic's
noise floor), and samples at a part's own ADC limits stay at the table's limits, so the saturation rule still sees
them. The parts' rates differ in general: set ``data.sample_rate`` (each record is resampled from its own rate).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from emg_lightning.data.readers.base import (
    DataSource,
    RecordEntry,
    SourceOptions,
    get_source,
    register,
    selected_records,
)
from emg_lightning.data.records import Recording
from emg_lightning.runtime.errors import ConfigError

PART_KEYS = ("name", "source", "root", "pattern", "manifest", "channel", "synthetic", "label_map", "muscles")
INT16 = np.iinfo(np.int16)


def parts_of(options: SourceOptions) -> list[dict[str, Any]]:
    """``data.sources`` checked: two or more parts, each a known source with known keys, names distinct."""
    parts = [dict(part) for part in options.sources]
    if len(parts) < 2:
        raise ConfigError("data.source=pooled needs data.sources: a list of two or more sources to read together")
    for i, part in enumerate(parts):
        unknown = sorted(set(part) - set(PART_KEYS))
        if unknown or "source" not in part:
            raise ConfigError(
                f"data.sources[{i}] needs 'source' and takes only {', '.join(PART_KEYS)}"
                + (f" (not {unknown})" if unknown else "")
            )
        if part["source"] == "pooled":
            raise ConfigError(f"data.sources[{i}] is itself pooled: list its sources instead")
        get_source(part["source"])
        part.setdefault("name", part["source"])
        if not str(part["name"]) or ":" in str(part["name"]):
            raise ConfigError(f"data.sources[{i}].name={part['name']!r} must be a non-empty name without ':'")
    names = [str(part["name"]) for part in parts]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"data.sources names {twice[0]} twice: give each part its own name")
    return parts


def part_options(part: Mapping[str, Any]) -> SourceOptions:
    return SourceOptions(
        root=part.get("root"),
        pattern=part.get("pattern"),
        manifest=part.get("manifest"),
        channel=int(part.get("channel") or 0),
        synthetic=dict(part.get("synthetic") or {}),
    )


@register
class PooledSource(DataSource):
    """The records of every part of ``data.sources``, namespaced by part and requantised to one gain."""

    name = "pooled"
    version = 1

    def records(self, options: SourceOptions) -> list[RecordEntry]:
        listed = []
        for part in parts_of(options):
            reader, sub_options = get_source(part["source"]), part_options(part)
            entries = selected_records(part["source"], sub_options, part.get("label_map"), part.get("muscles"))
            listed.append((part, reader, sub_options, entries))
        # the coarsest step of the parts: read from one record of each (cheap next to windowing them all)
        gain = min(reader.read(entries[0], sub_options).adc_gain for _, reader, sub_options, entries in listed)
        pooled = []
        for part, _, sub_options, entries in listed:
            prefix = f"{part['name']}:"
            for entry in entries:
                pooled.append(
                    RecordEntry(
                        prefix + entry.name,
                        prefix + entry.subject,
                        entry.label,
                        (part, entry, sub_options, gain),
                        {**entry.metadata, "part": str(part["name"])},
                        entry.files,
                    )
                )
        return pooled

    def read(self, entry: RecordEntry, options: SourceOptions) -> Recording:
        part, original, sub_options, gain = entry.location
        record = get_source(part["source"]).read(original, sub_options)
        digital = np.clip(np.round(record.digital.astype(np.float64) * (gain / record.adc_gain)), INT16.min, INT16.max)
        digital[record.digital == INT16.min], digital[record.digital == INT16.max] = INT16.min, INT16.max
        return dataclasses.replace(
            record,
            name=entry.name,
            subject=entry.subject,
            label=entry.label,
            digital=digital.astype(np.int16),
            adc_gain=gain,
            metadata={**record.metadata, **entry.metadata},
        )

    def identity(self, options: SourceOptions) -> dict[str, Any]:
        return {
            "parts": [
                {
                    **part,
                    "reader_version": get_source(part["source"]).version,
                    "reader": get_source(part["source"]).identity(part_options(part)),
                }
                for part in parts_of(options)
            ]
        }
