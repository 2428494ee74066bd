"""emg-export MODEL [--out DIR]: a trained model as ONNX and a torch.export program, with its input contract.

    emg-export logs/train/runs/2026-12-02_10-00-00                 # -> <run>/export/model.onnx, model.pt2
    emg-export logs/cv/qemg_loso-1a2b3c4d --formats onnx --out qemg  # a CV folder: its folds averaged in one graph

The graph maps windows in microvolts (batch, 1, window_samples) -- feature vectors for a feature model -- to class
probabilities; the batch size is free. Both files carry the contract (sampling rate, window length, input unit,
normalization, feature names, class order): ONNX in its metadata_props, the .pt2 as contract.json. Each export is
run (onnxruntime; torch.export.load) on the same windows as the trained model and refused beyond a 1e-4 difference
in any probability; export.json records the contract and the measured differences.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emg_lightning.inference.export import FORMATS, export_model
from emg_lightning.inference.predict import check_output_folder, load_model
from emg_lightning.runtime.console import one_line_errors
from emg_lightning.runtime.quiet import quiet_third_party


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a run folder or a CV folder")
    parser.add_argument("--out", help="output folder (default: <model>/export)")
    parser.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated, of {', '.join(FORMATS)}")
    args = parser.parse_args(argv)
    quiet_third_party()
    with one_line_errors():
        out = check_output_folder(args.out) if args.out else Path(args.model) / "export"
        model = load_model(args.model)
        report = export_model(model, out, tuple(f for f in args.formats.split(",") if f))
    contract = report["contract"]
    print(f"model: {args.model} ({model.kind})")
    print(f"input: {contract['input']} in {contract['input_unit']} at {contract['sample_rate_hz']:g} Hz")
    print(f"output: probabilities of {json.dumps(contract['classes'])}")
    for name, check in report["files"].items():
        print(
            f"{name}: max |exported - trained| = {check['max_abs_difference']:.2e} on {check['checked_windows']} inputs"
        )
    print(f"written in {out}: {', '.join(report['files'])}, export.json")


if __name__ == "__main__":
    main()
