"""emg-muap: motor-unit potentials of needle-EMG records, measured the way electromyographers do.

emg-muap N2001C01BB51.hea --out muap/                                  # one record
emg-muap records/ --out muap/                                          # every record of a folder
emg-muap N2001A01BB01.hea --reference N2001A01BB01.eaf --out muap/     # and its agreement with an expert
emg-muap N2001A01BB01.hea --normal-from muap-n2001/ --out muap/          # each value against normal ranges

Per record, in --out: NAME.png (each unit's superimposed discharges with its template, onset/end markers and values;
the raster of discharges; the yield), NAME_units.csv (each unit's firing and clinical parameters), NAME_summary.json
(the record's means, SDs, % polyphasic, yield), NAME.muap.eaf (the decomposition as an EMGLAB annotation file, for
an expert to open and correct) and, with --reference, NAME_agreement.json. For several records also records.csv.
--normal-from: a folder emg-muap wrote over a laboratory's records; the normal subjects' units of the same muscle
(never the record's own subject) give mean +- 2 SD per measure, and each unit and record mean is placed against it.
Records are analysed at their native rate (at least 11 kHz: the detection band reaches 5 kHz).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import numpy as np

from emg_lightning.data.readers.record_files import find_records, read_any
from emg_lightning.inference.predict import check_output_folder
from emg_lightning.muap.agreement import agreement, reference_fits_record
from emg_lightning.muap.analysis import UNIT_COLUMNS, RecordAnalysis, analyse, around_clipping
from emg_lightning.muap.eaf import ExpertTemplate, read_eaf, write_eaf
from emg_lightning.muap.figure import draw
from emg_lightning.muap.reference import RANGE_MEASURES, load_reference
from emg_lightning.runtime.console import one_line_errors
from emg_lightning.runtime.errors import DataError
from emg_lightning.runtime.files import atomic_write_json, atomic_write_text

REFERENCE_MIN_FIT = 0.5  # the record's average at the expert's discharges must correlate this well with his templates
SUMMARY_COLUMNS = (
    "record", "label", "subject", "muscle", "age", "rate_hz", "units", "duration_ms_mean", "amplitude_uv_mean",
    "phases_mean", "turns_mean", "area_uv_ms_mean", "thickness_ms_mean", "size_index_mean", "polyphasic_percent",
    "firing_rate_hz_mean", "explained_energy", "low_yield",
)  # fmt: skip


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("records", nargs="+", help="record files (.hea, Algiers .asc) or folders of them")
    parser.add_argument("--out", required=True, help="folder for the pictures, tables and annotation files")
    parser.add_argument("--reference", help="an expert's EMGLAB decomposition (.eaf) of the one record given")
    parser.add_argument("--normal-from", help="an emg-muap folder of a laboratory's records: normal ranges from it")
    parser.add_argument("--normal-label", default="normal", help="the normal subjects' label there (default normal)")
    parser.add_argument(
        "--channel", type=int, default=None, help="the signal of a multi-channel WFDB record (needed: never guessed)"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = argument_parser().parse_args(argv)
    with one_line_errors():
        out = check_output_folder(args.out)
        paths = find_records(args.records)
        if args.reference and len(paths) != 1:
            raise DataError(f"--reference {args.reference} describes one record; {len(paths)} records were given")
        out.mkdir(parents=True, exist_ok=True)
        rows, refused = [], []
        from tqdm import tqdm

        for path in tqdm(paths, desc="records", unit="record", disable=len(paths) < 2, file=sys.stderr):
            try:
                rows.append(analyse_path(path, out, args, args.reference))
            except DataError as exc:
                # a reader's refusal names the file already; the analysis's does not
                names_file = str(path) in str(exc)
                if len(paths) == 1:
                    raise DataError(str(exc) if names_file else f"{path}: {exc}") from None
                refused.append(str(exc) if names_file else f"{path.name}: {exc}")
        for line in refused:
            print(f"skipped {line}", file=sys.stderr)
        if len(paths) > 1:
            if not rows:
                raise DataError(f"none of the {len(paths)} records could be analysed (first: {refused[0]})")
            atomic_write_text(out / "records.csv", table(rows, SUMMARY_COLUMNS))
            print(f"{len(rows)} of {len(paths)} records analysed; summary in {out / 'records.csv'}")


def analyse_path(path: Path, out: Path, args: argparse.Namespace, reference: str | None) -> dict:
    record = read_any(path, channel=args.channel)
    signal = record.digital.astype(np.float64) / record.adc_gain
    annotation = None
    if reference:
        annotation = read_eaf(reference)
        fit = reference_fits_record(signal, record.sample_rate, annotation, record.adc_gain)
        if fit < REFERENCE_MIN_FIT:
            raise DataError(
                f"--reference {reference} does not describe this record: the record's average at its discharge "
                f"times correlates {fit:.2f} with its templates (at least {REFERENCE_MIN_FIT} for the record it "
                f"describes); give the .eaf of {record.name}"
            )
    clipped = around_clipping(record.clipped, record.sample_rate)  # nothing measurable there
    analysis = analyse(signal, record.sample_rate, excluded=clipped)
    name = record.name
    expert_of = None
    if annotation is not None:
        rows = agreement(analysis.decomposition, annotation, record.adc_gain)
        expert_of = {r.found_unit: r.expert_unit for r in rows if r.found_unit is not None}
        report = agreement_report(rows)
        atomic_write_json(out / f"{name}_agreement.json", {"record": name, "reference": str(reference), **report})
        print(
            f"{name}: {report['regular_found']} of {report['regular_units']} regularly firing expert units found "
            f"(>= 10 discharges); their discharges: precision {fmt(report['precision'])}, recall "
            f"{fmt(report['recall'])} (+-0.5 ms, inside each expert unit's span)"
        )
    meta = record.metadata
    summary = {
        "record": name,
        # a WFDB record without a reader of its own carries its class and subject in header comments, if at all
        "label": record.label if record.label != "unknown" else meta.get("class", "unknown"),
        "subject": meta.get("subject", record.subject) if record.subject == name else record.subject,
        "muscle": meta.get("muscle", ""),
        "age": meta.get("age", ""),
        "rate_hz": record.sample_rate,
        "duration_s": analysis.duration_s,
        **analysis.summary,
    }
    unit_rows, columns, flags = analysis.unit_rows(), UNIT_COLUMNS, None
    if args.normal_from:
        normal = load_reference(args.normal_from, summary["muscle"], summary["subject"], record.sample_rate,
                                args.normal_label)  # fmt: skip
        flags = [{m: normal.ranges[m].place(row[m]) for m in normal.ranges} for row in unit_rows]
        unit_rows = [{**row, **{f"{m}_vs_normal": f[m] for m in f}} for row, f in zip(unit_rows, flags)]
        columns = UNIT_COLUMNS + tuple(f"{m}_vs_normal" for m in RANGE_MEASURES)
        summary["normal_range"] = {
            "from": str(normal.folder), "muscle": normal.muscle, "subjects": normal.subjects, "note": normal.note,
            **{m: {"mean": r.mean, "sd": r.sd, "low": r.low, "high": r.high, "units": r.units}
               for m, r in normal.ranges.items()},
        }  # fmt: skip
        outside = sum(f.get("duration_ms") in ("low", "high") for f in flags)
        print(
            f"{name}: against {len(normal.subjects)} {args.normal_label} subjects' {normal.muscle} units in "
            f"{normal.folder}: {outside} of {len(flags)} units outside the duration range "
            f"{normal.ranges['duration_ms'].low:.1f}-{normal.ranges['duration_ms'].high:.1f} ms"
            + (f" (NOTE: {normal.note})" if normal.note else "")
        )
    atomic_write_text(out / f"{name}_units.csv", table(unit_rows, columns))
    atomic_write_json(out / f"{name}_summary.json", summary)
    atomic_write_text(out / f"{name}.muap.eaf", annotation_text(analysis))
    draw(analysis, f"{name} ({summary['label']}, {summary['muscle'] or 'muscle not stated'})", out / f"{name}.png",
         expert_of, flags, summary.get("normal_range"))  # fmt: skip
    s = analysis.summary
    print(
        f"{name}: {s['units']} units, duration {s['duration_ms_mean']:.1f} ms, amplitude {s['amplitude_uv_mean']:.0f} "
        f"uV, {s['polyphasic_percent']:.0f} % polyphasic, yield {s['explained_energy']:.0%}"
        + (" (LOW)" if analysis.low_yield else "")
        + (f"; {s['excluded_s']:.2f} s saturated left out" if s["excluded_s"] else "")
    )
    return summary


def agreement_report(rows) -> dict:
    """Totals over the expert's regularly firing units (>= 10 discharges) and, apart, the sparsely annotated ones."""
    regular = [r for r in rows if r.expert_discharges >= 10]
    matched = [r for r in regular if r.found_unit is not None]
    tp = sum(r.true_positives for r in matched)
    return {
        "regular_units": len(regular),
        "regular_found": len(matched),
        "precision": tp / sum(r.found_in_span for r in matched) if matched else None,
        "recall": tp / sum(r.expert_discharges for r in matched) if matched else None,
        "units": [r.__dict__ for r in rows],
    }


def annotation_text(analysis: RecordAnalysis) -> str:
    rate = analysis.rate_hz
    discharges = {i + 1: u.discharges / rate for i, u in enumerate(analysis.decomposition.units)}
    templates = {
        i + 1: ExpertTemplate(u.template_uv, rate, u.centre) for i, u in enumerate(analysis.decomposition.units)
    }
    return write_eaf(discharges, templates)


def table(rows: list[dict], columns: tuple[str, ...]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
