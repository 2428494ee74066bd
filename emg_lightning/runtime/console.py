"""Console helpers shared by the commands that read recordings and print per-record results (emg-predict,
emg-eval): their common arguments, progress bars and tables."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

from emg_lightning.runtime.errors import EMGLightningError

T = TypeVar("T")
SHOWN = 30  # rows printed; the CSV holds them all


def model_and_inputs_parser(description: str) -> argparse.ArgumentParser:
    """The arguments emg-predict and emg-eval share: MODEL, INPUT..., --channel, --batch-size (checked by
    ``parse_model_and_inputs``)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a run folder or a CV folder")
    parser.add_argument("inputs", nargs="+", help="WFDB folders or records (.hea)")
    parser.add_argument(
        "--channel", type=int, default=None, help="the signal of multi-channel records (needed: never guessed)"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="windows per forward pass (default 64)")
    return parser


def parse_model_and_inputs(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if args.batch_size < 1 or (args.channel is not None and args.channel < 0):
        parser.error("--batch-size must be >= 1 and --channel >= 0")
    return args


def progress(items: list[T], what: str) -> Iterator[T]:
    """A progress bar on stderr for long inputs (none for a handful of records)."""
    yield from tqdm(items, desc=what, unit="record", file=sys.stderr, disable=len(items) < 10)


def print_rows(title: str, rows: Iterable[dict], classes: list[str]) -> None:
    rows = list(rows)
    columns = [c for c in ("subject", "record", "label", "windows", "predicted") if rows and c in rows[0]]
    dropped = rows and "dropped_flat" in rows[0]
    header = columns + (["dropped"] if dropped else []) + [f"p_{c}" for c in classes]
    print(f"\n{title} ({len(rows)})")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows[:SHOWN]:
        cells = [str(row[c]) for c in columns]
        if dropped:
            cells.append(str(sum(v for k, v in row.items() if k.startswith("dropped_"))))
        cells += ["" if row[f"p_{c}"] is None else f"{row[f'p_{c}']:.3f}" for c in classes]
        print("| " + " | ".join(cells) + " |")
    if len(rows) > SHOWN:
        print(f"... {len(rows) - SHOWN} more in the CSV")


# Every command writes its files whole or not at all (atomic renames), so a rerun is all an interruption needs
INTERRUPTED = "interrupted by Ctrl-C: each output is written whole or not at all; run the same command again"


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's or a user's kill), turned into an interruption with its own line and exit code."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


@contextlib.contextmanager
def one_line_errors(
    errors: tuple[type[BaseException], ...] = (EMGLightningError,),
    interrupted: str = INTERRUPTED,
    sigterm: bool = True,
) -> Iterator[None]:
    """What every command does with what a user can fix: one line on stderr (``error: ...``, the message's first
    line) and exit 2; Ctrl-C: the line ``interrupted`` and exit 130; SIGTERM (``sigterm``; not for commands whose
    child processes handle it themselves): the same line, naming SIGTERM, and exit 143. Never a traceback."""
    previous = None
    if sigterm:
        try:
            previous = signal.signal(signal.SIGTERM, _raise_terminated)
        except ValueError:  # not the main thread: leave signals alone
            previous = None
    try:
        yield
    except errors as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
    except Terminated:
        print(f"error: {interrupted.replace('Ctrl-C', 'SIGTERM')}", file=sys.stderr)
        sys.exit(143)
    except KeyboardInterrupt:
        print(f"error: {interrupted}", file=sys.stderr)
        sys.exit(130)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
