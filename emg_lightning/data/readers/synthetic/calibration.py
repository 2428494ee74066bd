"""Per-class record statistics of the synthetic generator (or a real EMGLab folder) beside N2001's published
figures; the command is ``python -m emg_lightning.cli.calibrate``."""

from __future__ import annotations

import numpy as np

from emg_lightning.data.readers.synthetic.signal_stats import STATISTICS, record_statistics, roc_auc

CLASSES = ("normal", "myopathy", "als")
# Record-level AUCs measured on N2001 (synthetic-emg.md, section 1.3): (positive, negative, statistic, sign, value)
N2001_AUCS = (
    ("als", "normal", "hf_sd_uv", 1, 0.94),
    ("als", "normal", "largest_spike_uv", 1, 0.90),
    ("myopathy", "normal", "half_width_ms", -1, 0.82),
    ("myopathy", "normal", "power_above_500hz", 1, 0.79),
    ("myopathy", "normal", "spikes_per_s", 1, 0.73),
    ("myopathy", "normal", "hf_sd_uv", 1, 0.49),
)


def collect(records) -> list[tuple[str, dict[str, float]]]:
    rows = []
    for record in records:
        x = record.microvolts
        if record.name.startswith("N2001A08"):  # the shared tail artifact (see conf/data/emglab.yaml)
            x = x[: int(10.69 * record.sample_rate)]
        rows.append((record.label, record_statistics(x, record.sample_rate)))
    return rows


def report(rows: list[tuple[str, dict[str, float]]]) -> str:
    values = lambda label, key: np.array([s[key] for lab, s in rows if lab == label])  # noqa: E731
    counts = {c: sum(1 for lab, _ in rows if lab == c) for c in CLASSES}
    lines = [
        "| statistic | " + " | ".join(f"{c} ({counts[c]})" for c in CLASSES) + " |",
        "|---|" + "---|" * len(CLASSES),
    ]
    for key in STATISTICS:
        cells = []
        for c in CLASSES:
            v = values(c, key)
            cells.append(
                f"{np.nanmedian(v):.3g} [{np.nanpercentile(v, 10):.3g}-{np.nanpercentile(v, 90):.3g}]"
                if len(v)
                else "-"
            )
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines += ["", "| record-level AUC | here | N2001 |", "|---|---|---|"]
    for pos, neg, key, sign, target in N2001_AUCS:
        auc = roc_auc(sign * values(pos, key), sign * values(neg, key))
        direction = "higher" if sign > 0 else "lower"
        lines.append(f"| {pos} vs {neg}, {key} ({direction}) | {auc:.2f} | {target:.2f} |")
    return "\n".join(lines)
