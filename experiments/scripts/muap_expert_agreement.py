"""The motor-unit decomposition against the expert decompositions of four N2001 records, and what limits it.

python experiments/scripts/muap_expert_agreement.py ../shared/data experiments/muap_expert_agreement

Per record and in total: the expert's regularly firing units (>= 10 discharges) found, and for the found ones the
precision and recall of their discharges (+-0.5 ms, inside each expert unit's annotated span; ``muap.agreement``).
Then, for every regularly firing expert unit not found, the measured reason: its spike below the detection threshold
(its band-passed template's peak / the band's noise), most of its discharges superimposed on another expert unit's
(within the dead time), or its discharges taken by a found unit that holds another expert unit's as well (two units
merged).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from emg_lightning.data.readers import emglab
from emg_lightning.muap.agreement import REGULAR_MIN_DISCHARGES, agreement
from emg_lightning.muap.decompose import (
    DecompositionSettings,
    bandpass,
    decompose,
    nearest_distance,
    robust_noise,
    snippets,
)
from emg_lightning.muap.eaf import read_eaf
from emg_lightning.runtime.files import atomic_write_json, atomic_write_text

RECORDS = ("N2001A01BB01", "N2001A01BB02", "N2001C01BB51", "N2001C01BB55")
TOLERANCE_S = 0.0005


def analyse(shared: Path, name: str, settings: DecompositionSettings) -> dict:
    record = emglab.read_record(shared / "emglab-n2001-bb" / f"{name}.hea")
    rate = record.sample_rate
    signal = record.digital.astype(np.float64) / record.adc_gain
    annotation = read_eaf(shared / "emglab-n2001-decomposition" / f"{name}.eaf")
    decomposition = decompose(signal, rate, settings)
    rows = agreement(decomposition, annotation, record.adc_gain)
    filtered = bandpass(signal - np.median(signal), rate, settings.detect_band_hz)
    noise = robust_noise(filtered)
    half = int(round(settings.shape_ms * 1e-3 * rate))
    dead_s = settings.dead_time_ms * 1e-3
    units = []
    for row in rows:
        times = annotation.discharges_s[row.expert_unit]
        others = np.concatenate([t for u, t in annotation.discharges_s.items() if u != row.expert_unit])
        centres = np.round(times * rate).astype(int)
        spike = np.median(snippets(filtered, centres, half), axis=0)
        owner = owner_share = None
        if decomposition.units:  # the found unit holding most of this expert unit's discharges
            held = [np.mean(nearest_distance(times, u.discharges / rate) <= TOLERANCE_S) for u in decomposition.units]
            owner = int(np.argmax(held))
            owner_share = float(held[owner])
        units.append({
            **row.__dict__,
            "regular": row.expert_discharges >= REGULAR_MIN_DISCHARGES,
            "spike_snr": float(np.abs(spike).max() / noise),
            "superimposed": float(np.mean(nearest_distance(times, others) <= dead_s)),
            "owner": owner,
            "owner_share": owner_share,
        })  # fmt: skip
    for unit in units:  # a found unit holding most of two expert units' discharges merged them
        unit["merged_with_another"] = (
            unit["owner"] is not None
            and any(
                other is not unit and other["owner"] == unit["owner"] and (other["owner_share"] or 0) >= 0.5
                for other in units
            )
            and (unit["owner_share"] or 0) >= 0.5
        )
    return {"record": name, "found_units": len(decomposition.units), "noise_uv": noise,
            "explained_energy": decomposition.explained_energy, "units": units}  # fmt: skip


def reason(unit: dict, threshold: float) -> str:
    if unit["found_unit"] is not None:
        return "found"
    if unit["spike_snr"] < threshold:
        return "spike below the detection threshold"
    if unit["merged_with_another"]:
        return "merged with another expert unit"
    if unit["superimposed"] >= 0.5:
        return "most discharges superimposed"
    return "grouped apart or rejected (other)"


def main() -> None:
    shared, out = Path(sys.argv[1]), Path(sys.argv[2])
    settings = DecompositionSettings()
    results = [analyse(shared, name, settings) for name in RECORDS]
    lines = [
        "| record | expert units (regular) | regular found | precision | recall (found units) | units found | yield |",
        "|---|---|---|---|---|---|---|",
    ]
    totals = {"regular": 0, "found": 0, "tp": 0, "in_span": 0, "expert": 0}
    reasons: dict[str, int] = {}
    for result in results:
        regular = [u for u in result["units"] if u["regular"]]
        found = [u for u in regular if u["found_unit"] is not None]
        tp, in_span, expert = (
            sum(u[k] for u in found) for k in ("true_positives", "found_in_span", "expert_discharges")
        )
        for key, value in zip(totals, (len(regular), len(found), tp, in_span, expert)):
            totals[key] += value
        for unit in regular:
            why = reason(unit, settings.threshold)
            reasons[why] = reasons.get(why, 0) + 1
        lines.append(
            f"| {result['record']} | {len(result['units'])} ({len(regular)}) | {len(found)} | "
            f"{tp / in_span if in_span else float('nan'):.2f} | {tp / expert if expert else float('nan'):.2f} | "
            f"{result['found_units']} | {result['explained_energy']:.0%} |"
        )
    precision = totals["tp"] / totals["in_span"]
    recall = totals["tp"] / totals["expert"]
    lines.append(
        f"| **all four** | ({totals['regular']}) | **{totals['found']}** | **{precision:.2f}** | **{recall:.2f}** | | |"
    )
    summary = {"settings": settings.__dict__, "records": results, "totals": {**totals, "precision": precision,
               "recall": recall}, "reasons_regular": reasons}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "agreement.json", summary)
    table = "\n".join(lines)
    why = "\n".join(f"- {k}: {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]))
    atomic_write_text(out / "table.md", table + "\n\nRegularly firing expert units, by outcome:\n\n" + why + "\n")
    print(table)
    print(why)


if __name__ == "__main__":
    main()
