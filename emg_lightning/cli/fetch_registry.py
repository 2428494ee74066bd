"""Maintainers: regenerate the fetch registries (emg_lightning/data/fetch/registry/*.csv) from the checksum tables
that come with each set's reference copy. Not a console script; run from the repository root:

python -m emg_lightning.cli.fetch_registry ../shared/data

Each registry row: a file's path relative to the set's folder (and to every source's base URL), its sha256, and its
size in bytes where the reference copy holds the file (empty where only the checksum is known).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from emg_lightning.data.fetch.sets import EMGDB_SHA256, REGISTRY_DIR
from emg_lightning.runtime.files import atomic_write_text


def registry_text(rows: list[tuple[str, str, int | None]]) -> str:
    lines = ["path,sha256,size"] + [f'"{p}",{h},{"" if s is None else s}' for p, h, s in sorted(rows)]
    return "\n".join(lines) + "\n"


def size_if_present(path: Path) -> int | None:
    return path.stat().st_size if path.is_file() else None


def n2001_rows(folder: Path) -> list[tuple[str, str, int | None]]:
    rows = []
    with open(folder / "records.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            name = row["record"]
            rows.append((f"{name}.bin", row["bin_sha256"], int(row["bin_bytes"])))
            rows.append((f"{name}.hea", row["hea_sha256"], size_if_present(folder / f"{name}.hea")))
    return rows


def algiers_rows(folder: Path) -> list[tuple[str, str, int | None]]:
    with open(folder / "records.csv", newline="") as handle:
        return [
            (row["source_path"], row["source_sha256"], size_if_present(folder / "original-sample" / row["source_path"]))
            for row in csv.DictReader(handle)
        ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shared_data", type=Path, help="the folder holding emglab-n2001-bb/ and algiers-iemg/")
    args = parser.parse_args(argv)
    tables = {
        "emglab-n2001": n2001_rows(args.shared_data / "emglab-n2001-bb"),
        "algiers": algiers_rows(args.shared_data / "algiers-iemg"),
        "physionet-emgdb": [(name, digest, None) for name, digest in EMGDB_SHA256.items()],
    }
    for name, rows in tables.items():
        atomic_write_text(REGISTRY_DIR / f"{name}.csv", registry_text(rows))
        print(f"{name}: {len(rows)} files -> {REGISTRY_DIR / f'{name}.csv'}")


if __name__ == "__main__":
    main()
