"""``data.source=synthetic``: the embedded generator as a data source (no files; keyed by its settings)."""

from __future__ import annotations

import dataclasses
from typing import Any

from emg_lightning.data.readers.base import DataSource, RecordEntry, SourceOptions, register
from emg_lightning.data.readers.synthetic.generator import (
    GENERATOR_VERSION,
    SyntheticSpec,
    generate_record_of,
    plan,
)
from emg_lightning.data.records import Recording
from emg_lightning.runtime.errors import ConfigError


def spec_from_settings(settings: dict[str, Any]) -> SyntheticSpec:
    """``data.synthetic.*`` as the generator's spec; unknown or impossible settings are one ConfigError."""
    known = {"subjects_per_class", "records_per_subject", "duration_s", "seed"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"data.synthetic has unknown settings {unknown}; known: {sorted(known)}")
    kwargs = dict(settings)
    try:
        if "subjects_per_class" in kwargs:
            kwargs["subjects_per_class"] = tuple((k, int(v)) for k, v in dict(kwargs["subjects_per_class"]).items())
        if "records_per_subject" in kwargs:
            kwargs["records_per_subject"] = tuple(int(v) for v in kwargs["records_per_subject"])
    except (TypeError, ValueError):
        raise ConfigError(
            "data.synthetic.subjects_per_class must map classes to counts ('data.synthetic.subjects_per_class="
            "{normal:2,als:2}') and data.synthetic.records_per_subject be two counts ('[2,3]'), got "
            f"{settings.get('subjects_per_class')!r} and {settings.get('records_per_subject')!r}"
        ) from None
    try:
        return SyntheticSpec(**kwargs)
    except ValueError as exc:
        raise ConfigError(f"data.synthetic: {exc}") from exc


@register
class SyntheticSource(DataSource):
    """Generated needle EMG of normal, ALS and myopathy subjects (``data.synthetic.*`` sets how many)."""

    name = "synthetic"
    version = GENERATOR_VERSION

    def records(self, options: SourceOptions) -> list[RecordEntry]:
        spec = spec_from_settings(dict(options.synthetic))
        return [RecordEntry(p.name, p.subject, p.label, p) for p in plan(spec)]

    def read(self, entry: RecordEntry, options: SourceOptions) -> Recording:
        return generate_record_of(spec_from_settings(dict(options.synthetic)), entry.location)

    def identity(self, options: SourceOptions) -> dict[str, Any]:
        return {"spec": dataclasses.asdict(spec_from_settings(dict(options.synthetic)))}
