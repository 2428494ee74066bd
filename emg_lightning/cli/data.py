"""emg-data: what a data source holds before you train on it -- the same Hydra overrides as emg-train.

emg-data data=emglab data.root=/path/to/emglab-n2001-bb
emg-data data=emglab data.sample_rate=4687.5 --json summary.json
emg-data fetch --list                  # public sets to download (emg-data fetch --help)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emg_lightning.config import USER_ERRORS, build_datamodule, compose_config
from emg_lightning.data.fetch import FETCHABLE, data_dir, fetched_root, get_set
from emg_lightning.data.fetch.download import FetchError
from emg_lightning.data.fetch.report import fetch, list_text, verify
from emg_lightning.data.readers import SOURCES
from emg_lightning.data.summary import format_summary, summarise
from emg_lightning.runtime.console import one_line_errors
from emg_lightning.runtime.errors import ConfigError
from emg_lightning.runtime.files import atomic_write_json

FETCH_HELP = """emg-data fetch: download a public data set, every file checked against its pinned sha256.

emg-data fetch --list                              # each set: size, terms, what is fetched where
emg-data fetch emglab-n2001                        # into $EMG_DATA_DIR (default: the per-user data folder)
emg-data fetch algiers --mirror http://mirror.example.org/algiers/ --to /data/algiers
emg-data fetch emglab-n2001 --verify-only --to /data/emglab-n2001-bb

Present files that verify are kept; a cut download resumes; a wrong file is removed and fetched from the next
source. Afterwards data=emglab / data=algiers read the fetched copy when data.root is not set.
"""
FETCH_INTERRUPTED = (
    "interrupted: the files verified so far are kept (a partial file stays as NAME.part); run the same command "
    "again to resume"
)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["fetch"]:  # before Hydra reads anything as an override
        fetch_command(argv[1:])
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


def fetch_argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emg-data fetch", description=FETCH_HELP, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name", nargs="?", help=f"the set: {', '.join(FETCHABLE)}")
    parser.add_argument("--list", action="store_true", help="each set's size, terms and what is fetched where")
    parser.add_argument("--to", type=Path, help="the set's folder (default: $EMG_DATA_DIR/<set folder>)")
    parser.add_argument("--mirror", help="a server with the same relative paths as the original source, tried first")
    parser.add_argument("--verify-only", action="store_true", help="check the files present; download nothing")
    return parser


def fetch_command(argv: list[str]) -> None:
    args = fetch_argument_parser().parse_args(argv)
    with one_line_errors((ConfigError, FetchError), interrupted=FETCH_INTERRUPTED):
        if args.list:
            print(list_text())
            return
        if not args.name:
            raise ConfigError("name a set to fetch (emg-data fetch --list shows them)")
        dataset = get_set(args.name)
        folder = (args.to or data_dir() / dataset.folder).expanduser()
        if args.mirror and not args.mirror.startswith(("http://", "https://")):
            raise ConfigError(f"--mirror {args.mirror} is not an http(s) URL")
        if args.verify_only:
            verify(dataset, folder)
        else:
            fetch(dataset, folder, args.mirror)


def where_read(cfg) -> str:
    """`` root=...`` as set, or the fetched copy a reader falls back to (said so)."""
    if cfg.data.get("root"):
        return f" root={cfg.data.root}"
    fetched = getattr(SOURCES.get(cfg.data.source), "fetched_as", None)
    return f" root={fetched_root(fetched)} (the fetched copy of {fetched})" if fetched else ""


if __name__ == "__main__":
    main()
