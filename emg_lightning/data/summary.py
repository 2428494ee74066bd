"""What a window table holds: counts per class and subject, rates, drops and saturation (emg-data's figures)."""

from __future__ import annotations

from collections import Counter

from emg_lightning.data.cache import WindowTable


def summarise(table: WindowTable, classes: list[str]) -> dict:
    """Counts per class and per subject, rates, drops and saturation, from the window table alone."""
    columns = table.columns
    per_class, per_subject = {}, {}
    for label in classes:
        mask = columns["label"] == label
        per_class[label] = {
            "subjects": len(set(columns["subject"][mask])),
            "records": len(set(columns["record"][mask])),
            "windows": int(mask.sum()),
        }
    for subject in sorted(set(columns["subject"])):
        mask = columns["subject"] == subject
        per_subject[subject] = {
            "label": str(columns["label"][mask][0]),
            "records": len(set(columns["record"][mask])),
            "windows": int(mask.sum()),
        }
    windows_per_record = Counter(Counter(columns["record"].tolist()).values())
    summary = table.summary
    return {
        "records": summary["records"],
        "records_skipped_short": summary["records_skipped_short"],
        "subjects": len(per_subject),
        "windows": len(table),
        "window_samples": int(table.windows.shape[1]),
        "sample_rate_hz": table.sample_rate,
        "native_rate_hz": summary["native_rate_hz"],
        "windows_dropped": summary["windows_dropped"],
        "windows_per_record": {str(k): v for k, v in sorted(windows_per_record.items())},
        "saturated_samples_per_record": summary["saturated_samples_per_record"],
        "per_class": per_class,
        "per_subject": per_subject,
    }


def format_summary(s: dict) -> str:
    lines = [
        f"{s['records']} records, {s['subjects']} subjects, {s['windows']} windows of {s['window_samples']} samples "
        f"at {s['sample_rate_hz']} Hz (native {s['native_rate_hz']} Hz)",
        "",
        f"  {'class':<10}{'subjects':>9}{'records':>9}{'windows':>9}",
    ]
    lines += [f"  {c:<10}{v['subjects']:>9}{v['records']:>9}{v['windows']:>9}" for c, v in s["per_class"].items()]
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
