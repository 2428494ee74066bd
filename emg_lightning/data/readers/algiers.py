"""The Algiers needle-EMG set (Messekher et al., Mendeley Data 2023, doi 10.17632/543xpjycj9.1): 397 recordings of
5 s at 32,768 Hz from 238 people (healthy, myopathy, neuropathy), deltoid and biceps brachii, right and left.

Two layouts are read, detected by content (a folder holding both, or neither, is refused):

- **as distributed**: ``.asc`` text files anywhere below ``data.root``
  (``01_Deltoid/Healthy/EMG _001 _01_ RD_Hea.asc``),
  one line of microvolt values printed to 0.1 uV. The values are ADC counts x 0.78125 uV, so ``round(x / 0.78125)``
  recovers the counts exactly (the published files sit within 0.064 count of that grid; a file far off it is
  refused rather than silently rescaled). File name: ``EMG _<record>_<patient>_ <side><muscle>_<class>``.
- **the lossless WFDB copy**: ``ALG<record>_<subject>_<side><muscle>.hea/.dat`` with ``#class``, ``#subject``,
  ``#muscle`` and ``#side`` header comments.

Patient ids restart in every class (healthy 01 and myopathy 01 are different people), so the subject is the class
letter plus the patient id (``H01``, ``M01``, ``N01``), in both layouts. Records are named alike in both layouts
(``ALG001_H01_RD``), so a model or a cache never sees a difference between them.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from emg_lightning.data.readers.base import DataSource, RecordEntry, SourceOptions, register, wfdb_files
from emg_lightning.data.readers.wfdb_dir import header_metadata, read_header, read_record
from emg_lightning.data.records import Recording
from emg_lightning.runtime.errors import DataError

SAMPLE_RATE_HZ = 32768.0
UV_PER_COUNT = 0.78125  # the .asc values' grid: 1 / 1.28 ADC units per uV
ASC_NAME = re.compile(
    r"EMG\s*_(?P<record>\d+)\s*_(?P<patient>\d+)_\s*(?P<side>[RL])(?P<muscle>[DB])_(?P<cls>Hea|Myo|Neu)\.asc"
)
CLASSES = {
    "Hea": ("normal", "H", "Healthy"),
    "Myo": ("myopathy", "M", "Myopathy"),
    "Neu": ("neuropathy", "N", "Neuropathy"),
}
MUSCLES = {"D": "deltoid", "B": "biceps brachii"}
SIDES = {"R": "right", "L": "left"}
# a file is on the count grid when almost every sample is: the published files have at most 2 samples off it
MAX_OFF_GRID_FRACTION = 1e-3
OFF_GRID_COUNTS = 0.1


def layout(root: Path) -> str:
    """``asc`` or ``wfdb``, from what the folder holds; refused when it holds both or neither."""
    if not root.is_dir():
        raise DataError(f"Algiers directory {root} does not exist: set data.root to the folder of the .asc tree or "
                        f"of the WFDB copy")  # fmt: skip
    has_asc = next(root.rglob("*.asc"), None) is not None
    has_wfdb = next(root.glob("*.hea"), None) is not None
    if has_asc and has_wfdb:
        raise DataError(
            f"{root} holds both .asc files and WFDB headers: point data.root at one layout (the .asc tree as "
            f"downloaded, or the folder of the WFDB copy)"
        )
    if not (has_asc or has_wfdb):
        raise DataError(
            f"{root} holds neither .asc files (the set as distributed) nor .hea headers (its WFDB copy): point "
            f"data.root at the Algiers recordings"
        )
    return "asc" if has_asc else "wfdb"


def parse_asc_name(path: Path) -> tuple[str, str, str, dict[str, str]]:
    """(record name, subject, label, metadata) from an original file name; its class folder must agree."""
    match = ASC_NAME.fullmatch(path.name)
    if not match:
        raise DataError(
            f"{path}: the name does not follow the Algiers pattern 'EMG _<record> _<patient>_ <R|L><D|B>_<Hea|Myo|Neu>"
            f".asc'; rename it or leave it out of data.root"
        )
    label, letter, folder = CLASSES[match["cls"]]
    other_folders = {f for _, _, f in CLASSES.values()} - {folder}
    wrong = [p for p in path.parent.parts if p in other_folders]
    if wrong:
        raise DataError(f"{path}: the file name says {folder} but it lies in a {wrong[-1]} folder: which is right?")
    subject = f"{letter}{int(match['patient']):02d}"
    name = f"ALG{int(match['record']):03d}_{subject}_{match['side']}{match['muscle']}"
    metadata = {"muscle": MUSCLES[match["muscle"]], "side": SIDES[match["side"]]}
    return name, subject, label, metadata


def read_asc(path: Path) -> np.ndarray:
    """The int16 ADC counts of one original ``.asc`` file."""
    try:
        tokens = path.read_bytes().split()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc})") from exc
    if not tokens:
        raise DataError(f"{path}: is empty: download it again")
    try:
        values = np.array(tokens, dtype=np.float64)
    except ValueError:
        bad = next(t for t in tokens if not _is_number(t))
        raise DataError(
            f"{path}: holds {bad[:20].decode(errors='replace')!r}, not a number: the file is damaged; download it again"
        ) from None
    if not np.isfinite(values).all():
        raise DataError(f"{path}: holds non-finite values (nan or inf): the file is damaged; download it again")
    counts = values / UV_PER_COUNT
    rounded = np.round(counts)
    off_grid = np.abs(counts - rounded) > OFF_GRID_COUNTS
    if off_grid.mean() > MAX_OFF_GRID_FRACTION:
        raise DataError(
            f"{path}: {int(off_grid.sum())} of {len(values)} values are off the {UV_PER_COUNT} uV grid of the Algiers "
            f"recordings: this is not an original file of the set (read other data with data=wfdb)"
        )
    if rounded.min() < -32768 or rounded.max() > 32767:
        raise DataError(f"{path}: values beyond +-{32767 * UV_PER_COUNT:.0f} uV cannot be original ADC counts")
    return rounded.astype(np.int16)


def asc_recording(path: Path, name: str, subject: str, label: str, metadata: dict[str, str]) -> Recording:
    """One original ``.asc`` file as a Recording (its counts, at the set's rate and gain)."""
    return Recording(
        name=name,
        subject=subject,
        label=label,
        sample_rate=SAMPLE_RATE_HZ,
        digital=read_asc(path),
        adc_gain=1.0 / UV_PER_COUNT,
        metadata=dict(metadata),
    )


def _is_number(token: bytes) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False


@register
class AlgiersSource(DataSource):
    """Healthy / myopathy / neuropathy, deltoid and biceps, from either layout of the Algiers set."""

    name = "algiers"
    version = 1

    fetched_as = "algiers"
    root_hint = "data.root=/path/to/algiers-iemg/records (WFDB copy) or the .asc tree, or set ALGIERS_DIR"

    def records(self, options: SourceOptions) -> list[RecordEntry]:
        root = self.root_of(options)
        entries = []
        if layout(root) == "asc":
            for path in sorted(root.rglob("*.asc")):
                name, subject, label, metadata = parse_asc_name(path)
                source = path.relative_to(root).as_posix()
                entries.append(RecordEntry(name, subject, label, path, {**metadata, "source": source}, (path,)))
        else:
            letters = {label: letter for label, letter, _ in CLASSES.values()}
            for header in sorted(root.glob("*.hea")):
                comments = header_metadata(read_header(header))
                label, subject = comments.get("class", ""), comments.get("subject", "")
                if label not in letters or not subject.startswith(letters[label]):
                    raise DataError(
                        f"{header}: needs the comments '#class: normal|myopathy|neuropathy' and '#subject: <H|M|N>"
                        f"<patient>' of the Algiers WFDB copy (got class {label!r}, subject {subject!r})"
                    )
                metadata = {k: comments[k] for k in ("muscle", "side", "source") if k in comments}
                entries.append(RecordEntry(header.stem, subject, label, header, metadata, wfdb_files(header)))
        names = [e.name for e in entries]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise DataError(f"{root}: record {twice[0]} is there twice (two files with one record number)")
        return entries

    def read(self, entry: RecordEntry, options: SourceOptions) -> Recording:
        if entry.location.suffix == ".hea":
            return read_record(entry.location, entry.subject, entry.label)
        return asc_recording(entry.location, entry.name, entry.subject, entry.label, entry.metadata)
