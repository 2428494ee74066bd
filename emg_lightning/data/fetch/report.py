"""What ``emg-data fetch`` prints: a fetch with its citation, terms and outcome, a verification, the list of sets."""

from __future__ import annotations

import sys
from pathlib import Path

from emg_lightning.data.fetch.download import FetchError, fetch_set, verify_tree
from emg_lightning.data.fetch.sets import (
    COMPLETE_MARKER,
    FETCHABLE,
    FetchableSet,
    data_dir,
    read_marker,
)
from emg_lightning.runtime.errors import ConfigError


def fetch(dataset: FetchableSet, folder: Path, mirror: str | None) -> None:
    files = dataset.files()
    known = sum(f.size or 0 for f in files)
    print(f"{dataset.name}: {dataset.title}")
    print(f"  cite: {dataset.citation}")
    print(f"  terms: {dataset.terms}")
    print(f"  {dataset.size_text} into {folder}")
    from tqdm import tqdm

    with tqdm(total=known or None, unit="B", unit_scale=True, desc=dataset.name, file=sys.stderr) as bar:
        report = fetch_set(dataset, folder, mirror, progress=bar.update)
    print(
        f"  {report.kept} files already present and verified, {len(report.fetched)} fetched "
        f"({report.bytes_fetched / 1e6:.1f} MB), {len(report.failed)} failed"
    )
    if report.failed:
        for path, reasons in list(report.failed.items())[:10]:
            print(f"  {path}: " + "; ".join(reasons), file=sys.stderr)
        if len(report.failed) > 10:
            print(f"  ... and {len(report.failed) - 10} more", file=sys.stderr)
        first, reasons = next(iter(report.failed.items()))
        raise FetchError(
            f"{len(report.failed)} of {len(files)} files of {dataset.name} could not be fetched and verified "
            f"(first: {first}: {reasons[-1] if reasons else 'no source'}); the set is not marked complete: run the "
            f"same command again, or with --mirror URL"
        )
    print(f"  verified: all {len(files)} files match their sha256; read with: {dataset.read_with}")


def verify(dataset: FetchableSet, folder: Path) -> None:
    files = dataset.files()
    if not folder.is_dir():
        raise ConfigError(f"{folder} does not exist: nothing to verify (emg-data fetch {dataset.name} fetches it)")
    missing, damaged = verify_tree(folder, files)
    for path, got in list(damaged.items())[:10]:
        expected = next(f.sha256 for f in files if f.path == path)
        print(f"  damaged: {path}: sha256 {got}, expected {expected}", file=sys.stderr)
    for path in missing[:10]:
        print(f"  missing: {path}", file=sys.stderr)
    if missing or damaged:
        (folder / COMPLETE_MARKER).unlink(missing_ok=True)  # never trusted again until a fetch repairs it
        to = "" if folder == data_dir() / dataset.folder else f" --to {folder}"
        raise FetchError(
            f"{folder}: {len(damaged)} damaged and {len(missing)} missing of {len(files)} files of "
            f"{dataset.name}; emg-data fetch {dataset.name}{to} repairs it (damaged files are fetched again)"
        )
    print(f"{folder}: all {len(files)} files of {dataset.name} match their sha256")


def list_text() -> str:
    lines = [f"data folder: {data_dir()} (EMG_DATA_DIR)", ""]
    for dataset in FETCHABLE.values():
        folder = data_dir() / dataset.folder
        marker = read_marker(folder)
        if marker and marker.get("registry_sha256") == dataset.registry_sha256():
            state = f"fetched and verified {marker.get('verified_utc', '')} in {folder}"
        elif folder.is_dir():
            present = sum((folder / f.path).is_file() for f in dataset.files())
            state = f"partly present in {folder} ({present} of {len(dataset.files())} files; not verified)"
        else:
            state = "not fetched"
        lines += [
            f"{dataset.name}: {dataset.title}",
            f"  size: {dataset.size_text}; terms: {dataset.terms}",
            f"  uses: {dataset.uses}",
            "  from: "
            + "; ".join(s.label for s in dataset.sources)
            + (f"; by hand: {dataset.by_hand}" if dataset.by_hand else ""),
            f"  state: {state}",
            f"  then: {dataset.read_with}",
            "",
        ]
    return "\n".join(lines).rstrip()
