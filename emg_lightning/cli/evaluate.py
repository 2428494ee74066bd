"""emg-eval MODEL INPUT [INPUT ...] --out DIR: a trained model on a labelled external test set, with the report of
a CV (the eval.py of lightning-hydra-template).

    emg-eval logs/train/runs/final-model other_clinic/ --pattern '(?P<subject>P\\d+)_(?P<label>[A-Z])\\d+' \
        --label-map A=als,C=normal,M=myopathy --out eval-other-clinic
    emg-eval logs/cv/qemg_loso-1a2b3c4d emglab_copy/ --out eval-emglab     # EMGLab names carry their labels

Labels: EMGLab N2001 record names, or --pattern (regex with groups subject and label) / --manifest (CSV: record,
subject, label) for other WFDB folders. Records of classes the model does not know are skipped and counted.
Preprocessing as emg-predict. Writes into --out: predictions.csv (emg-cv's format), records.csv, subjects.csv,
metrics.json, and the window / record / subject report with intervals (cv_summary.md/.json, confusion matrices);
prints the report. Subjects whose names also appear among the model's training or validation subjects are named,
and the figures flagged as leaky.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from emg_lightning.data.readers import emglab, wfdb_dir
from emg_lightning.inference.predict import find_records, load_model, predict_record, read_any, write_outputs
from emg_lightning.reports.cv_summary import markdown, report
from emg_lightning.runtime.console import model_and_inputs_parser, parse_model_and_inputs, print_rows, progress
from emg_lightning.runtime.errors import DataError, EMGLightningError
from emg_lightning.runtime.files import atomic_write_json
from emg_lightning.runtime.quiet import quiet_third_party


def labelled_records(headers: list[Path], pattern: str | None, label_map: str | None, manifest: str | None):
    """(header, subject, label) of every input record: EMGLab names, else the pattern or manifest; labels then
    renamed by ``--label-map`` (``neuropathy=als``: another clinic's name for the model's class)."""
    items = [item for item in (label_map or "").split(",") if item]
    if any("=" not in item for item in items):
        raise DataError(f"--label-map {label_map!r} must be LABEL=CLASS pairs separated by commas, e.g. neuropathy=als")
    mapping = dict(item.split("=", 1) for item in items)
    if manifest or pattern:
        labelled = wfdb_dir.label_records(headers, pattern, manifest)
    else:
        unnamed = [h for h in headers if not emglab.RECORD_NAME.match(h.stem)]
        if unnamed:
            raise DataError(
                f"{unnamed[0]}: no label: its name is not an EMGLab N2001 name; give --pattern (with groups subject "
                f"and label, plus --label-map) or --manifest"
            )
        labelled = [(h, *emglab.parse_record_name(h.stem, h)) for h in headers]
    return [(h, subject, mapping.get(label, label)) for h, subject, label in labelled]


def differences(model_data: dict, predictions: list) -> dict[str, dict]:
    """What the evaluated recordings have that the model's training data had not: label names it never saw renamed
    into its classes, other muscles, other native rates ({} when the model predates these records)."""
    if not model_data:
        return {}
    muscles = sorted({p.record.metadata.get("muscle", "unknown") for p in predictions})
    rates = sorted({float(p.record.sample_rate) for p in predictions})
    out = {}
    if set(muscles) - set(model_data.get("muscles", [])):
        out["muscles"] = {"training": model_data.get("muscles", []), "evaluated": muscles}
    if set(rates) - set(model_data.get("native_rates_hz", [])):
        out["native_rates_hz"] = {"training": model_data.get("native_rates_hz", []), "evaluated": rates}
    return out


def training_subjects(runs: list[Path]) -> set[str]:
    seen: set[str] = set()
    for run in runs:
        metrics = run / "metrics.json"
        if metrics.is_file():
            info = json.loads(metrics.read_text())
            seen |= set(info.get("train_subjects") or []) | set(info.get("val_subjects") or [])
    return seen


def main(argv: list[str] | None = None) -> None:
    parser = model_and_inputs_parser(__doc__)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--pattern", help="regex on record names with groups (?P<subject>...) and (?P<label>...)")
    parser.add_argument("--label-map", help="label codes to classes, e.g. A=als,C=normal,M=myopathy")
    parser.add_argument("--manifest", help="CSV with columns record, subject, label")
    args = parse_model_and_inputs(parser, argv)
    quiet_third_party()
    out = Path(args.out)
    try:
        model = load_model(args.model)
        labelled = labelled_records(find_records(args.inputs), args.pattern, args.label_map, args.manifest)
        kept = [(h, s, label) for h, s, label in labelled if label in model.classes]
        skipped = len(labelled) - len(kept)
        if not kept:
            raise DataError(f"no input record is of the model's classes {model.classes}")
        predictions = [
            predict_record(model, read_any(h, s, label, args.channel), h, args.batch_size)
            for h, s, label in progress(kept, "evaluating")
        ]
        if not any(len(p.probabilities) for p in predictions):
            raise DataError("every window of every record was dropped by the model's quality rules: nothing to score")
        rows = write_outputs(out, model, predictions, labelled=True)
        subjects = sorted({p.record.subject for p in predictions})
        shifted = differences(model.training_data, predictions)
        overlap = sorted(set(subjects) & training_subjects(model.runs))
        atomic_write_json(
            out / "metrics.json",
            {
                "fold": 0,
                "seed": 0,
                "split": "external",
                "leaky": bool(overlap),
                "test_subjects": subjects,
                "subjects_also_in_training": overlap,
                "model": str(Path(args.model).resolve()),
                "inputs": [str(Path(i).resolve()) for i in args.inputs],
                "records_skipped_other_classes": skipped,
                "label_map": dict(item.split("=", 1) for item in (args.label_map or "").split(",") if item),
                "model_training_data": model.training_data,
                "differs_from_training": shifted,
            },
        )
        summary = report(out, f"external evaluation of {model.name}")
    except EMGLightningError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # each output file is written whole or not at all: rerunning is all it takes
        print("error: interrupted by Ctrl-C before every record was done: run the same command again", file=sys.stderr)
        sys.exit(130)
    print_rows("records", rows["records"], model.classes)
    print(markdown(summary))
    if skipped:
        print(f"{skipped} record(s) of classes the model does not know ({model.classes}) were skipped")
    for what, values in shifted.items():
        print(f"note: the model was trained on {what} {values['training']}; these recordings: {values['evaluated']}")
    if overlap:
        print(f"LEAKY: subjects {', '.join(overlap)} were among the model's training / validation subjects")
    print(
        f"written in {out}: predictions.csv, records.csv, subjects.csv, metrics.json, {', '.join(summary['outputs'])}"
    )


if __name__ == "__main__":
    main()
