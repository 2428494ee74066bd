"""The picture of one record's motor-unit analysis, laid out as an electromyographer reads it: per unit its
superimposed discharges (grey) with the template on top (black), onset and end markers and the measured values;
below, the raster of every unit's discharge times; above, the record's summary and yield."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from emg_lightning.muap.analysis import RecordAnalysis  # noqa: E402

MAX_PANELS = 16
MAX_TRACES = 40  # superimposed discharges drawn per unit


ARROW = {"low": " v", "high": " ^", "normal": "", "n/a": ""}


def draw(
    analysis: RecordAnalysis,
    title: str,
    path: Path,
    expert_of: dict[int, int] | None = None,
    flags: list[dict[str, str]] | None = None,
    normal_range: dict | None = None,
) -> None:
    """Write the picture to ``path`` (PNG). ``expert_of``: found unit index -> the expert unit it matched;
    ``flags``: per unit, each measure ``low`` / ``normal`` / ``high`` against ``normal_range`` (marked v / ^)."""
    units = analysis.decomposition.units[:MAX_PANELS]  # the largest; every unit is in the raster and the table
    columns = 4
    rows = -(-len(units) // columns)
    figure = plt.figure(figsize=(13, 2.6 * rows + 2.8))
    grid = figure.add_gridspec(rows + 1, columns, height_ratios=[2.6] * rows + [2.2], hspace=0.55, wspace=0.25)
    ms_per_sample = 1e3 / analysis.rate_hz
    colours = plt.get_cmap("tab10")(np.arange(len(analysis.decomposition.units)) % 10)
    for i, (unit, measures, firing) in enumerate(zip(units, analysis.measures, analysis.firing)):
        axis = figure.add_subplot(grid[i // columns, i % columns])
        t = (np.arange(len(unit.template_uv)) - unit.centre) * ms_per_sample
        for trace in unit.snippets_uv[:MAX_TRACES]:
            axis.plot(t, trace - np.median(trace), color="0.75", linewidth=0.5)
        axis.plot(t, unit.template_uv, color="black", linewidth=1.4)
        if np.isfinite(measures.onset_ms):
            for marker in (measures.onset_ms, measures.end_ms):
                axis.axvline(marker + t[0], color="tab:red", linewidth=0.9, linestyle="--")
        span = max(np.ptp(unit.template_uv), 1.0)
        axis.set_ylim(unit.template_uv.min() - 0.4 * span, unit.template_uv.max() + 0.6 * span)
        axis.set_xlim(t[0], t[-1])
        matched = f" = expert {expert_of[i]}" if expert_of and i in expert_of else ""
        axis.set_title(f"unit {i + 1}{matched}: {firing.discharges} discharges, {firing.rate_hz:.1f} Hz",
                       fontsize=8.5, color=colours[i])  # fmt: skip
        mark = {k: ARROW[v] for k, v in flags[i].items()} if flags else {}
        outside = any(v in ("low", "high") for v in (flags[i].values() if flags else ()))
        axis.text(
            0.02, 0.97,
            f"D {measures.duration_ms:.1f} ms{mark.get('duration_ms', '')}  "
            f"A {measures.amplitude_uv:.0f} uV{mark.get('amplitude_uv', '')}\n"
            f"phases {measures.phases}{mark.get('phases', '')}  turns {measures.turns}{mark.get('turns', '')}\n"
            f"area {measures.area_uv_ms:.0f} uV.ms{mark.get('area_uv_ms', '')}  "
            f"SI {measures.size_index:.2f}{mark.get('size_index', '')}",
            transform=axis.transAxes, fontsize=7, va="top", family="monospace",
            color="tab:red" if outside else "black",
        )  # fmt: skip
        axis.tick_params(labelsize=7)
        if i % columns == 0:
            axis.set_ylabel("uV", fontsize=8)
        if i // columns == rows - 1 or i + columns >= len(units):
            axis.set_xlabel("ms from discharge", fontsize=8)
    raster = figure.add_subplot(grid[rows, :])
    for i, unit in enumerate(analysis.decomposition.units):
        raster.vlines(unit.discharges / analysis.rate_hz, i + 0.6, i + 1.4, color=colours[i], linewidth=0.8)
    raster.set_xlim(0, analysis.duration_s)
    raster.set_ylim(0.3, len(analysis.decomposition.units) + 0.7)
    raster.set_xlabel("time in the record (s)", fontsize=8)
    raster.set_ylabel("unit", fontsize=8)
    raster.invert_yaxis()
    raster.tick_params(labelsize=7)
    s = analysis.summary
    yield_text = f"yield {s['explained_energy']:.0%} of the spike-band energy" + (
        " - LOW: most activity is not in these units (interference or superpositions)" if analysis.low_yield else ""
    )
    reference = ""
    if normal_range:
        d, a = normal_range["duration_ms"], normal_range["amplitude_uv"]
        reference = (
            f"\nnormal ({len(normal_range['subjects'])} subjects' {normal_range['muscle']}, mean +- 2 SD): duration "
            f"{d['low']:.1f}-{d['high']:.1f} ms, amplitude {a['low']:.0f}-{a['high']:.0f} uV; v below, ^ above"
            + (f"\nNOTE: {normal_range['note']}" if normal_range["note"] else "")
        )
    figure.suptitle(
        f"{title}\n{s['units']} motor units; mean duration {s['duration_ms_mean']:.1f} ms, amplitude "
        f"{s['amplitude_uv_mean']:.0f} uV, {s['polyphasic_percent']:.0f} % polyphasic; {yield_text}{reference}",
        fontsize=10,
    )
    partial = path.with_name(f".{path.name}.partial.png")  # never a half-written picture under the final name
    figure.savefig(partial, dpi=110, bbox_inches="tight")
    plt.close(figure)
    partial.replace(path)
