"""emg-eval MODEL INPUT [INPUT ...] --out DIR: a trained model on a labelled external test set, with the report of
a CV (the eval.py of lightning-hydra-template).

    emg-eval logs/train/runs/final-model other_clinic/ 'data.pattern=(?P<subject>P\\d+)_(?P<label>[A-Z])\\d+' \
        'data.label_map={A: als, C: normal, M: myopathy}' --out eval-other-clinic
    emg-eval logs/final/n2001 algiers/records data.manifest=algiers/records.csv 'data.label_map={neuropathy: als}' \
        --out eval-algiers
    emg-eval logs/cv/qemg_loso-1a2b3c4d emglab_copy/ --out eval-emglab     # EMGLab names carry their labels

Labels: EMGLab N2001 record names, or data.pattern= (regex with groups subject and label) / data.manifest= (CSV:
record, subject, label) for other WFDB folders, renamed by data.label_map= -- the keys and syntax of training (the
older --pattern, --manifest and --label-map A=als,C=normal still work for one release, with a note). Records of
classes the model does not know are skipped and counted.
Preprocessing as emg-predict. Writes into --out: predictions.csv (emg-cv's format), records.csv, subjects.csv,
metrics.json, and the window / record / subject report with intervals (cv_summary.md/.json, confusion matrices);
prints the report. Subjects whose names also appear among the model's training or validation subjects are named,
and the figures flagged as leaky.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from emg_lightning.data.readers import emglab, wfdb_dir
from emg_lightning.data.readers.record_files import find_records, read_any
from emg_lightning.inference.predict import (
    check_output_folder,
    load_model,
    predict_record,
    write_outputs,
)
from emg_lightning.reports.cv_summary import markdown, report
from emg_lightning.runtime.console import (
    model_and_inputs_parser,
    one_line_errors,
    parse_model_and_inputs,
    print_rows,
    progress,
)
from emg_lightning.runtime.errors import DataError
from emg_lightning.runtime.files import atomic_write_json
from emg_lightning.runtime.quiet import quiet_third_party

# the training keys emg-eval takes (``data.manifest=labels.csv``), and the flags they replace
DATA_KEYS = {"data.pattern": "pattern", "data.manifest": "manifest", "data.label_map": "label_map"}


def take_data_keys(argv: list[str]) -> tuple[list[str], dict]:
    """``data.<key>=<value>`` arguments taken out of ``argv``; ``data.label_map`` parsed as a YAML mapping."""
    rest, found = [], {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not (sep and key.startswith("data.")):
            rest.append(arg)
            continue
        if key not in DATA_KEYS:
            raise DataError(f"emg-eval takes {', '.join(DATA_KEYS)}; {key} is not one of them")
        if key == "data.label_map":
            try:
                mapping = yaml.safe_load(value)
            except yaml.YAMLError:
                mapping = None
            if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
                raise DataError(
                    f"data.label_map={value} must be a mapping of labels to classes, e.g. '{{als: neuropathy}}'"
                )
            found["label_map"] = {str(k): v for k, v in mapping.items()}
        else:
            found[DATA_KEYS[key]] = value
    return rest, found


def label_map_flag(text: str) -> dict[str, str]:
    """The older ``--label-map A=als,C=normal`` form."""
    items = [item for item in text.split(",") if item]
    if any("=" not in item for item in items):
        raise DataError(f"--label-map {text!r} must be LABEL=CLASS pairs separated by commas, e.g. neuropathy=als")
    return dict(item.split("=", 1) for item in items)


def labelled_records(headers: list[Path], pattern: str | None, mapping: dict[str, str], manifest: str | None):
    """(header, subject, label) of every input record: EMGLab names, else the pattern or manifest; labels then
    renamed by ``mapping`` (``{neuropathy: als}``: another clinic's name for the model's class)."""
    if manifest or pattern:
        labelled = wfdb_dir.label_records(headers, pattern, manifest)
    else:
        unnamed = [h for h in headers if not emglab.RECORD_NAME.match(h.stem)]
        if unnamed:
            raise DataError(
                f"{unnamed[0]}: no label: its name is not an EMGLab N2001 name; give data.pattern= (with groups "
                f"subject and label, plus data.label_map=) or data.manifest="
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


def argument_parser() -> argparse.ArgumentParser:
    parser = model_and_inputs_parser(__doc__)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--pattern", help="deprecated: data.pattern=REGEX")
    parser.add_argument("--label-map", help="deprecated: 'data.label_map={A: als, C: normal}'")
    parser.add_argument("--manifest", help="deprecated: data.manifest=CSV")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser()
    with one_line_errors():
        argv, labels = take_data_keys(list(sys.argv[1:] if argv is None else argv))
    args = parse_model_and_inputs(parser, argv)
    for flag, key in (("pattern", "pattern"), ("manifest", "manifest"), ("label_map", "label_map")):
        value = getattr(args, flag)
        if value is None:
            continue
        print(f"note: --{flag.replace('_', '-')} is deprecated: use data.{key}= (as in training)", file=sys.stderr)
        with one_line_errors():
            labels.setdefault(key, label_map_flag(value) if key == "label_map" else value)
    quiet_third_party()
    with one_line_errors():
        out = check_output_folder(args.out)
    with one_line_errors(interrupted="interrupted by Ctrl-C before every record was done: run the same command again"):
        model = load_model(args.model)
        mapping = labels.get("label_map", {})
        labelled = labelled_records(find_records(args.inputs), labels.get("pattern"), mapping, labels.get("manifest"))
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
                "label_map": mapping,
                "model_training_data": model.training_data,
                "differs_from_training": shifted,
            },
        )
        summary = report(out, f"external evaluation of {model.name}")
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
