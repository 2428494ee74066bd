"""EMGLAB annotation files (``.eaf``, McGill, Lateva & Marateb 2005): an expert's decomposition of one record -- each
motor unit's discharge times and, optionally, its MUAP template -- read, and written so that EMGLAB can open and
correct this package's decompositions.

Format (XML, root ``emglab_annotation_file``): ``<emglab_spike_events>`` holds one discharge per line, ``time_s unit
chan``; ``<emglab_freeform><var1>`` holds per unit (``<I1>``, ``<I2>``, ...) its template ``<data>`` in ``<units>``
sampled at ``<rate>`` Hz, with ``<index>`` the (1-based) sample aligned to the discharge time."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emg_lightning.runtime.errors import DataError

NAMESPACE = "http://ece.wpi.edu/~ted"


@dataclass(frozen=True)
class ExpertTemplate:
    samples_uv: np.ndarray
    rate_hz: float
    index: int  # 0-based sample of ``samples_uv`` aligned with the discharge times


@dataclass
class Annotation:
    """One decomposition: discharge times (s) per unit id, and the templates it carries."""

    discharges_s: dict[int, np.ndarray]
    templates: dict[int, ExpertTemplate] = field(default_factory=dict)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def read_eaf(path: str | Path) -> Annotation:
    """The discharges and templates of an ``.eaf`` file; DataError naming the file and what is wrong."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise DataError(f"{path}: not a readable EMGLAB annotation file ({exc})") from None
    if _local(root.tag) != "emglab_annotation_file":
        raise DataError(f"{path}: the root element is <{_local(root.tag)}>, not <emglab_annotation_file>")
    events = next((e for e in root.iter() if _local(e.tag) == "emglab_spike_events"), None)
    if events is None or not (events.text or "").strip():
        raise DataError(f"{path}: no <emglab_spike_events>: it holds no discharges")
    times: dict[int, list[float]] = {}
    for number, line in enumerate(events.text.strip().splitlines(), 1):
        words = line.split()
        try:
            time_s, unit = float(words[0]), int(float(words[1]))
        except (IndexError, ValueError):
            raise DataError(f"{path}: spike event line {number} {line.strip()!r} is not 'time unit chan'") from None
        if not np.isfinite(time_s) or time_s < 0:
            raise DataError(f"{path}: spike event line {number} has the time {words[0]}")
        times.setdefault(unit, []).append(time_s)
    annotation = Annotation({u: np.sort(np.array(t)) for u, t in sorted(times.items())})
    for item in root.iter():
        fields = {_local(child.tag): (child.text or "").strip() for child in item}
        if not {"data", "unit", "rate", "index"} <= fields.keys():
            continue
        try:
            unit = int(float(fields["unit"]))
            data = np.array(fields["data"].split(), dtype=float)
            template = ExpertTemplate(data, float(fields["rate"]), int(float(fields["index"])) - 1)
        except ValueError:
            raise DataError(f"{path}: the template of <{_local(item.tag)}> is not numbers") from None
        if not 0 <= template.index < len(data) or template.rate_hz <= 0:
            raise DataError(f"{path}: the template of unit {unit} has index {fields['index']} of {len(data)} samples")
        annotation.templates[unit] = template
    return annotation


def write_eaf(discharges_s: dict[int, np.ndarray], templates: dict[int, ExpertTemplate]) -> str:
    """The text of an ``.eaf`` file EMGLAB opens: every discharge (time order) and each unit's template (in µV,
    ``<gain>`` left out so that no reader divides it again)."""
    events = sorted((float(t), unit) for unit, ts in discharges_s.items() for t in ts)
    lines = [
        '<?xml version="1.0" encoding="ASCII"?>',
        "",
        f'<emglab_annotation_file xmlns="{NAMESPACE}">',
        "<emglab_version>0.01</emglab_version>",
        "<emglab_spike_header>",
        "<time></time>",
        "<unit></unit>",
        "<chan></chan>",
        "</emglab_spike_header>",
        "<emglab_spike_events>",
        *(f"{t:.5f} {unit} 1" for t, unit in events),
        "</emglab_spike_events>",
        "<emglab_freeform>",
        f'<var1 class="struct" size="1 {len(templates)}">',
    ]
    for i, (unit, template) in enumerate(sorted(templates.items()), 1):
        data = " ".join(f"{v:.0f}" for v in template.samples_uv)
        lines += [
            f"<I{i}>",
            '<chan class="double" size="1 1">1</chan>',
            f'<unit class="double" size="1 1">{unit}</unit>',
            f'<data class="double" size="{len(template.samples_uv)} 1">{data}</data>',
            f'<index class="double" size="1 1">{template.index + 1}</index>',
            f'<rate class="double" size="1 1">{template.rate_hz:g}</rate>',
            '<units class="char" size="1 2">uV</units>',
            f"</I{i}>",
        ]
    lines += ["</var1>", "</emglab_freeform>", "</emglab_annotation_file>", ""]
    return "\n".join(lines)
