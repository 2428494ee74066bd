"""What a window table holds: counts per class and subject, rates, drops and saturation (emg-data's figures)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from emg_lightning.data.cache import WindowTable

SHOWN_RECORDS = 10  # records listed by name on the console; --json has them all


def amplitude_uv(table: WindowTable, rows: np.ndarray, sample: int = 400, seed: int = 0) -> dict[str, float]:
    """Median window RMS and median window peak |x| in microvolts over (a fixed sample of) ``rows``: a wrong unit
    in a header shows here as a factor of 1,000."""
    if len(rows) == 0:
        return {"rms_uv": float("nan"), "peak_uv": float("nan")}
    chosen = np.sort(np.random.default_rng(seed).choice(rows, min(sample, len(rows)), replace=False))
    x = table.windows[chosen].astype(np.float64) / table.adc_gain
    return {"rms_uv": float(np.median(np.sqrt((x**2).mean(axis=1)))), "peak_uv": float(np.median(np.abs(x).max(1)))}


def summarise(table: WindowTable, classes: list[str]) -> dict:
    """Counts per class and per subject, rates, units, amplitudes, drops and saturation, from the window table
    alone. Headline counts are those of ``classes`` (data.classes); other classes in the folder are named apart."""
    columns = table.columns
    kept = np.isin(columns["label"], classes)
    per_class, per_subject = {}, {}
    metadata = table.summary.get("record_metadata", {})
    for label in classes:
        mask = columns["label"] == label
        records = sorted(set(columns["record"][mask]))
        subjects = len(set(columns["subject"][mask]))
        per_class[label] = {
            "subjects": subjects,
            "records": len(records),
            "records_per_subject": round(len(records) / subjects, 2) if subjects else 0.0,
            "windows": int(mask.sum()),
            "muscles": dict(Counter(metadata.get(r, {}).get("muscle", "unknown") for r in records)),
            **amplitude_uv(table, np.flatnonzero(mask)),
        }
    for subject in sorted(set(columns["subject"][kept])):
        mask = columns["subject"] == subject
        per_subject[subject] = {
            "label": str(columns["label"][mask][0]),
            "records": len(set(columns["record"][mask])),
            "windows": int(mask.sum()),
        }
    windows_per_record = Counter(Counter(columns["record"][kept].tolist()).values())
    summary = table.summary
    return {
        "records": len(set(columns["record"][kept])),
        "records_in_folder": summary["records"],
        "other_classes": sorted(set(columns["label"][~kept].tolist())),
        "records_skipped_short": summary["records_skipped_short"],
        "subjects": len(per_subject),
        "windows": int(kept.sum()),
        "window_samples": int(table.windows.shape[1]),
        "sample_rate_hz": table.sample_rate,
        "native_rate_hz": summary["native_rate_hz"],
        "native_rates_hz": summary["native_rates_hz"],
        "records_at_other_rates": summary["records_at_other_rates"],
        "units": summary["units"],
        "windows_dropped": summary["windows_dropped"],
        "windows_per_record": {str(k): v for k, v in sorted(windows_per_record.items())},
        "saturated_samples_per_record": summary["saturated_samples_per_record"],
        "per_class": per_class,
        "per_subject": per_subject,
    }


def format_summary(s: dict) -> str:
    lines = [
        f"{s['records']} records, {s['subjects']} subjects, {s['windows']} windows of {s['window_samples']} samples "
        f"at {s['sample_rate_hz']} Hz (native {s['native_rate_hz']} Hz)"
        + (f"; classes not in data.classes left out: {', '.join(s['other_classes'])}" if s["other_classes"] else ""),
        "units: " + ", ".join(f"{unit} ({n} records)" for unit, n in s["units"].items()),
        "",
        f"  {'class':<12}{'subjects':>9}{'records':>9}{'rec/subj':>9}{'windows':>9}{'RMS uV':>9}{'peak uV':>9}"
        "  muscles",
    ]
    lines += [
        f"  {c:<12}{v['subjects']:>9}{v['records']:>9}{v['records_per_subject']:>9.2f}{v['windows']:>9}"
        f"{v['rms_uv']:>9.1f}{v['peak_uv']:>9.0f}  " + ", ".join(f"{m} {n}" for m, n in v["muscles"].items())
        for c, v in s["per_class"].items()
    ]
    lines += ["  (medians over windows: a header in the wrong unit shows as a factor of 1,000)"]
    per_subject = [v["records_per_subject"] for v in s["per_class"].values() if v["subjects"]]
    if per_subject and max(per_subject) >= 1.5 * min(per_subject):
        lines += [
            "  records per subject differ by class: record-level figures weigh some people more; read the subject "
            "level and balanced accuracy (data.weight_by=subject trains with every person weighing alike)"
        ]
    odd = s["records_at_other_rates"]
    if odd:
        lines += ["", f"records at another rate than the usual {s['native_rate_hz']:g} Hz: {len(odd)}"]
        lines += [f"  {name}: {rate:g} Hz" for name, rate in list(odd.items())[:SHOWN_RECORDS]]
        if len(odd) > SHOWN_RECORDS:
            lines.append(f"  ... and {len(odd) - SHOWN_RECORDS} more (all in --json)")
    dropped = ", ".join(f"{k} {v}" for k, v in s["windows_dropped"].items()) or "none"
    lines += [
        "",
        f"windows dropped by the quality rules: {dropped}",
        f"records shorter than one window (skipped): {len(s['records_skipped_short'])}",
        "windows per record: " + ", ".join(f"{k} x{v}" for k, v in s["windows_per_record"].items()),
    ]
    saturated = s["saturated_samples_per_record"]
    lines.append(
        f"records with samples at the ADC limits: {len(saturated)}"
        + (": " + ", ".join(f"{k} ({v})" for k, v in saturated.items()) if saturated else "")
    )
    lines += ["", "  subject  class      records  windows"]
    lines += [f"  {k:<8} {v['label']:<10}{v['records']:>8}{v['windows']:>9}" for k, v in s["per_subject"].items()]
    return "\n".join(lines)
