"""emg-predict MODEL INPUT [INPUT ...]: a trained model's probabilities for new recordings.

    emg-predict logs/train/runs/2026-12-02_10-00-00 new_clinic/              # a run folder, a WFDB folder
    emg-predict logs/cv/qemg_loso-1a2b3c4d rec01.hea rec02.hea --out preds   # a CV folder: mean of its fold models

MODEL: a run folder (emg-train, one emg-cv fold, a final split=all model) or a CV folder (every fold model, their
probabilities averaged). INPUT: folders of WFDB records (EMGLab N2001 folders included) or single records. Each
recording is windowed exactly as the model's training data were (window, hop, band-pass, quality rules), resampled
from its own rate to the model's (never up), in microvolts from its header's unit (uV, mV, V in any case).
Writes into --out (default: predictions-<MODEL name>): predictions.csv (per window), records.csv and subjects.csv
(mean probabilities, predicted class, windows kept and dropped by each rule), prediction.json; prints the table.
"""

from __future__ import annotations

from pathlib import Path

from emg_lightning.data.readers.record_files import find_records, read_any
from emg_lightning.inference.predict import (
    check_output_folder,
    load_model,
    predict_record,
    write_outputs,
)
from emg_lightning.runtime.console import (
    model_and_inputs_parser,
    one_line_errors,
    parse_model_and_inputs,
    print_rows,
    progress,
)
from emg_lightning.runtime.quiet import quiet_third_party


def main(argv: list[str] | None = None) -> None:
    parser = model_and_inputs_parser(__doc__)
    parser.add_argument("--out", help="output folder (default: predictions-<model folder name>)")
    args = parse_model_and_inputs(parser, argv)
    quiet_third_party()
    with one_line_errors(interrupted="interrupted by Ctrl-C before every record was done: run the same command again"):
        out = check_output_folder(args.out or f"predictions-{Path(args.model).resolve().name}")
        model = load_model(args.model)
        headers = find_records(args.inputs)
        predictions = [
            predict_record(model, read_any(h, channel=args.channel), h, args.batch_size)
            for h in progress(headers, "predicting")
        ]
        rows = write_outputs(out, model, predictions, labelled=False)
    print(f"model: {args.model} ({model.kind}); {model.sample_rate:g} Hz, {model.windows.window_s:g}-s windows")
    print_rows("records", rows["records"], model.classes)
    print_rows("subjects", rows["subjects"], model.classes)
    print(f"written in {out}: predictions.csv, records.csv, subjects.csv, prediction.json")


if __name__ == "__main__":
    main()
