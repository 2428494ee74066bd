"""emg-explain MODEL RECORD [--windows 0,3,4] [--target als] [--out DIR]: what in the raw EMG drove a prediction.

    emg-explain logs/train/runs/2026-12-02_10-00-00 data/N2001A01BB01.hea --windows 0,1,2
    emg-explain logs/cv/resemgnet_loso_cpu-loso-1a2b3c4d new.hea --target myopathy --out why

Windows the record as the model's training did (like emg-predict), then draws, window after window, the EMG in
microvolts, integrated gradients (signed: red pushes towards the target class, blue away) and |saliency| of the
target's probability (default: each window's predicted class), both as 10-ms moving means, and the class
probabilities per window: explanation.png. The sanity check re-initialises every layer and recomputes the
attributions: they must differ (rank correlation of |attribution| below 0.5) or the picture reflects the input, not
what the network learned; sanity_check.png shows both, explanation.json holds the numbers. Window networks only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from emg_lightning.data.readers.record_files import find_records, read_any
from emg_lightning.inference.explain import METHODS, draw, draw_sanity, explain_windows
from emg_lightning.inference.predict import check_output_folder, load_model, record_windows
from emg_lightning.runtime.console import one_line_errors
from emg_lightning.runtime.errors import DataError
from emg_lightning.runtime.files import atomic_save_figure, atomic_write_json
from emg_lightning.runtime.quiet import quiet_third_party

MAX_WINDOWS = 12  # beyond this a figure stops being readable: choose --windows


def window_numbers(text: str) -> list[int]:
    """``--windows 0,3,4`` as window numbers; anything else is one line naming the flag."""
    try:
        numbers = [int(w) for w in text.split(",")]
    except ValueError:
        raise DataError(f"--windows {text} must be window numbers separated by commas, e.g. 0,3,4") from None
    if any(n < 0 for n in numbers):
        raise DataError(f"--windows {text}: window numbers start at 0")
    return numbers


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a run folder or a CV folder of a window network")
    parser.add_argument("record", help="one WFDB record (.hea)")
    parser.add_argument("--windows", help=f"comma-separated window numbers (default: the first {MAX_WINDOWS})")
    parser.add_argument("--target", help="class to explain (default: each window's predicted class)")
    parser.add_argument("--out", help="output folder (default: explain-<record name>)")
    args = parser.parse_args(argv)
    quiet_third_party()
    with one_line_errors():
        out = check_output_folder(args.out or f"explain-{Path(args.record).name.removesuffix('.hea')}")
        wanted = window_numbers(args.windows) if args.windows else None
        model = load_model(args.model)
        (header,) = find_records([args.record])
        record = read_any(header)
        cut, windows_uv = record_windows(model, record, header)
        if not len(cut.windows):
            raise DataError(f"{header}: no window to explain (too short, or every window dropped: {dict(cut.dropped)})")
        positions = list(range(min(len(cut.windows), MAX_WINDOWS)))
        if wanted is not None:
            index = {int(k): i for i, k in enumerate(cut.window_index)}
            missing = [w for w in wanted if w not in index]
            if missing:
                raise DataError(f"{header}: windows {missing} do not exist or were dropped; kept: {sorted(index)}")
            positions = [index[w] for w in wanted]
        uv = windows_uv[positions]
        result = explain_windows(model, uv, args.target)
        starts = cut.start_sample[positions] / record.sample_rate
        title = f"{record.name} ({record.subject}), model {model.name}: {model.kind}"
        names = [
            atomic_save_figure(
                draw(result, uv, starts, model.sample_rate, model.classes, title), out / "explanation.png"
            ),
            atomic_save_figure(draw_sanity(result, uv[0], model.sample_rate), out / "sanity_check.png"),
        ]
        windows = [int(cut.window_index[p]) for p in positions]
        atomic_write_json(
            out / "explanation.json",
            {
                "record": str(header),
                "model": str(Path(args.model).resolve()),
                "windows": windows,
                "targets": [model.classes[t] for t in result["targets"]],
                "probabilities": {
                    model.classes[c]: result["probabilities"][:, c].tolist() for c in range(len(model.classes))
                },
                "methods": list(METHODS),
                "sanity_check": result["sanity"],
            },
        )
    for k, w in enumerate(windows):
        p = ", ".join(f"{c} {result['probabilities'][k, i]:.2f}" for i, c in enumerate(model.classes))
        print(f"window {w}: {p}; explained: {model.classes[result['targets'][k]]}")
    for method in METHODS:
        r = result["sanity"]["rank_correlation"][method]
        verdict = "passed" if result["sanity"]["passed"][method] else "FAILED: do not read these attributions"
        print(f"sanity check ({method}): rank correlation with a re-initialised network {r:.2f}: {verdict}")
    print(f"written in {out}: {', '.join(names)}, explanation.json")


if __name__ == "__main__":
    main()
