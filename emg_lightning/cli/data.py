"""emg-data: what a data source holds before you train on it -- the same Hydra overrides as emg-train.

emg-data data=emglab data.root=/path/to/emglab-n2001-bb
emg-data data=emglab data.sample_rate=4687.5 --json summary.json
emg-data fetch --list                  # public sets to download (emg-data fetch --help)
"""

from __future__ import annotations

import argparse
import sys

from emg_lightning.cli.fetch import main as fetch_main
from emg_lightning.config import USER_ERRORS, build_datamodule, compose_config
from emg_lightning.data.fetch import fetched_root
from emg_lightning.data.readers import SOURCES
from emg_lightning.data.summary import format_summary, summarise
from emg_lightning.runtime.console import one_line_errors
from emg_lightning.runtime.files import atomic_write_json


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["fetch"]:  # before Hydra reads anything as an override
        fetch_main(argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="also write the summary to this JSON file")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for emg-train (data=..., data.root=...)")
    args = parser.parse_args(argv)
    with one_line_errors(USER_ERRORS):
        cfg = compose_config(args.overrides)
        datamodule = build_datamodule(cfg)
        table = datamodule.load_table()
        classes = datamodule.chosen_classes()
        summary = summarise(table, classes)
        absent = [c for c in classes if summary["per_class"][c]["records"] == 0]
    print(
        f"data={cfg.data.source}"
        + where_read(cfg)
        + f", window {cfg.data.window_s} s, hop {cfg.data.hop_s or cfg.data.window_s} s"
        + (f", labels renamed {dict(cfg.data.label_map)}" if cfg.data.get("label_map") else "")
        + (f", muscles {list(cfg.data.muscles)}" if cfg.data.get("muscles") else "")
    )
    print(format_summary(summary))
    if absent:
        print(
            f"note: data.classes names {', '.join(absent)}, which these records do not hold: training on them would "
            f"be refused (choose among the labels above, or rename with data.label_map)"
        )
    if args.json:
        atomic_write_json(args.json, summary)
        print(f"summary written to {args.json}")


def where_read(cfg) -> str:
    """`` root=...`` as set, or the fetched copy a reader falls back to (said so)."""
    if cfg.data.get("root"):
        return f" root={cfg.data.root}"
    fetched = getattr(SOURCES.get(cfg.data.source), "fetched_as", None)
    return f" root={fetched_root(fetched)} (the fetched copy of {fetched})" if fetched else ""


if __name__ == "__main__":
    main()
