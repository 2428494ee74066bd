"""Per class, the distributions of MUAP duration, amplitude and % polyphasic on each data set, one point per
subject (the mean over its records), with the classes' ages where the headers give them; and whether they go the
textbook direction (myopathy: shorter, smaller, more polyphasic than normal; neurogenic: longer, larger).

emg-muap ../shared/data/emglab-n2001-bb --out runs/muap_n2001
emg-muap ../shared/data/algiers-iemg/records --out runs/muap_algiers
python experiments/scripts/muap_physiology.py experiments/muap_physiology N2001=runs/muap_n2001 \
    "Algiers deltoid=runs/muap_algiers:deltoid" "Algiers biceps=runs/muap_algiers:biceps brachii"
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from emg_lightning.runtime.files import atomic_write_json, atomic_write_text  # noqa: E402

MEASURES = (("duration_ms_mean", "MUAP duration (ms)"), ("amplitude_uv_mean", "amplitude (uV)"),
            ("polyphasic_percent", "% polyphasic"))  # fmt: skip
NEUROGENIC = ("als", "neuropathy")
EXPECTED = {  # the textbook direction against normal: +1 larger, -1 smaller
    "myopathy": {"duration_ms_mean": -1, "amplitude_uv_mean": -1, "polyphasic_percent": +1},
    "neurogenic": {"duration_ms_mean": +1, "amplitude_uv_mean": +1, "polyphasic_percent": +1},
}


def per_subject(folder: Path, muscle: str | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """{class: {subject: {measure: mean over the subject's records (of ``muscle``), 'age': ..., 'records': n}}}."""
    rows = [r for r in csv.DictReader(open(folder / "records.csv")) if muscle is None or r["muscle"] == muscle]
    out: dict[str, dict[str, dict[str, float]]] = {}
    for row in rows:
        subject = out.setdefault(row["label"], {}).setdefault(row["subject"], {"records": 0})
        subject["records"] += 1
        for key, _ in MEASURES:
            if row[key] not in ("", "nan"):
                subject.setdefault(key + "_values", []).append(float(row[key]))
        if row.get("age"):
            subject["age"] = float(row["age"])
    for subjects in out.values():
        for s in subjects.values():
            for key, _ in MEASURES:
                values = s.pop(key + "_values", [])
                s[key] = float(np.mean(values)) if values else float("nan")
    return out


def main() -> None:
    out = Path(sys.argv[1])
    sets = dict(arg.split("=", 1) for arg in sys.argv[2:])  # NAME=FOLDER or NAME=FOLDER:MUSCLE
    data = {
        name: per_subject(Path(spec.split(":")[0]), spec.split(":", 1)[1] if ":" in spec else None)
        for name, spec in sets.items()
    }
    figure, axes = plt.subplots(len(MEASURES), len(data), figsize=(5.2 * len(data), 9), squeeze=False)
    table, verdicts = [], {}
    for column, (name, classes) in enumerate(data.items()):
        order = sorted(classes, key=lambda c: (c != "normal", c))
        for row, (key, label) in enumerate(MEASURES):
            axis = axes[row, column]
            values = [np.array([s[key] for s in classes[c].values() if np.isfinite(s[key])]) for c in order]
            axis.boxplot(values, showfliers=False)
            for i, v in enumerate(values, 1):
                axis.scatter(np.full(len(v), i) + np.random.default_rng(i).uniform(-0.15, 0.15, len(v)), v, s=9,
                             alpha=0.6, color="tab:blue")  # fmt: skip
            ages = [np.array([s["age"] for s in classes[c].values() if "age" in s]) for c in order]
            axis.set_xticks(range(1, len(order) + 1))
            axis.set_xticklabels([
                f"{c}\n{len(v)} subjects" + (f"\nage {a.min():.0f}-{a.max():.0f}" if len(a) else "")
                for c, v, a in zip(order, values, ages)
            ], fontsize=8)  # fmt: skip
            axis.set_ylabel(label, fontsize=9)
            if row == 0:
                axis.set_title(name, fontsize=11)
            medians = {c: float(np.median(v)) for c, v in zip(order, values)}
            for c in order:
                if c == "normal":
                    continue
                kind = "neurogenic" if c in NEUROGENIC else c
                if kind in EXPECTED:
                    went = np.sign(medians[c] - medians["normal"])
                    verdicts.setdefault(name, {})[f"{c} {key}"] = bool(went == EXPECTED[kind][key])
            table.append((name, label, medians))
    figure.suptitle("MUAP measures per class (emg-muap), one point per subject (mean over its records)", fontsize=11)
    figure.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    figure.savefig(out / "physiology.png", dpi=110)
    lines = ["| set | measure | " + " | ".join(["class medians (subject level)"]) + " |", "|---|---|---|"]
    for name, label, medians in table:
        lines.append(f"| {name} | {label} | " + ", ".join(f"{c} {v:.1f}" for c, v in medians.items()) + " |")
    atomic_write_text(out / "physiology.md", "\n".join(lines) + "\n")
    atomic_write_json(out / "physiology.json", {"medians": [{"set": n, "measure": m, "medians": d} for n, m, d in
                                                            table], "textbook_direction": verdicts})  # fmt: skip
    print("\n".join(lines))
    print(verdicts)


if __name__ == "__main__":
    main()
