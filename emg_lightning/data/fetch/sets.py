"""The data sets ``emg-data fetch`` can download: where each comes from, how to cite it, its terms, what this
project uses of it, and the registry of its files (path, sha256, size) shipped in ``registry/``.

Where fetched sets go: ``EMG_DATA_DIR``, else the per-user data folder (``~/.local/share/emg-lightning`` on Linux),
one folder per set. A set counts as fetched only once every file is verified: the fetch then writes
``fetched.json`` in its folder, and only then do readers use that folder as their default ``data.root``."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from emg_lightning.runtime.errors import ConfigError

REGISTRY_DIR = Path(__file__).parent / "registry"
COMPLETE_MARKER = "fetched.json"  # written last, after every file verified

# PhysioNet's emgdb 1.0.0, checksums of the copies known to this project (not on this machine: data, not tested)
EMGDB_SHA256 = {
    "emg_healthy.dat": "4990f34f0ffb314f6ce70c1d2089b7ce41fa96d19fcd9fb334815ca5033966fd",
    "emg_healthy.hea": "466466f9e1bd9ba5f34359877ca7eac6ac285878987a860534f6820291f5856b",
    "emg_myopathy.dat": "2c310a0f61843a5a5e906d413b6ff7f51370a91e516344af511c7fe6da9eaf7f",
    "emg_myopathy.hea": "06e54a3b50e9481fb23fc7b8b4f5e6c57bd00c560171f9989eb2f8286778ba74",
    "emg_neuropathy.dat": "108c6c71d3792f3dba645539bd9241119fb4c6a3a0f3e515399694b072375dd5",
    "emg_neuropathy.hea": "135e42361c5cf680e8212cfabfcdcf2c1eb203c707599c586bc6521fb92288e2",
}


@dataclass(frozen=True)
class Source:
    """A server holding the set's files at ``base_url`` + each file's registry path. ``checked``: whether this
    project has checked that the layout matches (an unchecked source is tried last and said to be unchecked)."""

    label: str
    base_url: str
    checked: bool = True

    def url_of(self, path: str) -> str:
        from urllib.parse import quote

        return self.base_url.rstrip("/") + "/" + quote(path)


@dataclass(frozen=True)
class RegisteredFile:
    path: str  # relative to the set's folder and to each source's base URL
    sha256: str
    size: int | None  # bytes, where known


@dataclass(frozen=True)
class FetchableSet:
    name: str
    folder: str  # under the data folder
    title: str
    citation: str
    terms: str
    uses: str  # what this project uses of it, and why
    size_text: str
    sources: tuple[Source, ...]
    read_with: str  # the command that reads the fetched copy
    by_hand: str = ""  # where the set can also be downloaded by hand (then checked with --verify-only --to DIR)
    manifest: tuple[tuple[str, str, str], ...] = ()  # (record, subject, label) rows written as records.csv

    def files(self) -> list[RegisteredFile]:
        return read_registry(REGISTRY_DIR / f"{self.name}.csv")

    def registry_sha256(self) -> str:
        return hashlib.sha256((REGISTRY_DIR / f"{self.name}.csv").read_bytes()).hexdigest()


def read_registry(path: Path) -> list[RegisteredFile]:
    with open(path, newline="") as handle:
        return [
            RegisteredFile(row["path"], row["sha256"], int(row["size"]) if row["size"] else None)
            for row in csv.DictReader(handle)
        ]


FETCHABLE: dict[str, FetchableSet] = {
    s.name: s
    for s in (
        FetchableSet(
            name="emglab-n2001",
            folder="emglab-n2001-bb",
            title="EMGLab N2001, biceps brachii, low-level contraction: 340 records of 22 people (7 ALS, 9 controls, "
            "6 myopathy), 23,437.5 Hz, Rigshospitalet Copenhagen 2001",
            citation="M. Nikolic, Detailed analysis of clinical electromyography signals: EMG decomposition, findings "
            "and firing pattern analysis in controls and patients with myopathy and amyotrophic lateral sclerosis, "
            "PhD thesis, University of Copenhagen, 2001; K.C. McGill, Z.C. Lateva, H.R. Marateb, EMGLAB: an "
            "interactive EMG decomposition program, J. Neurosci. Methods 149(2):121-133, 2005",
            terms="research data published openly by EMGLab (emglab.net), with no explicit licence; cite the above",
            uses="only the biceps records at level: low (135 moderate-level records exist only for controls, so "
            "they would confound class with contraction level); the rest of N2001 has no checksums here",
            size_text="680 files, 170 MiB",
            sources=(
                Source(
                    "GitHub ChatMED/ALS-EMG at commit 484e65e (the Kaggle 'emglab' copy)",
                    "https://raw.githubusercontent.com/ChatMED/ALS-EMG/484e65e809a8937b08dee55f5adb76097763d7ed/"
                    "als_datasets/emglab_dataset_bb",
                ),
                Source("EMGLab's own site (layout not checked)", "http://www.emglab.net/emglab/Signals/N2001", False),
            ),
            read_with="emg-cv experiment=qemg_loso",
        ),
        FetchableSet(
            name="algiers",
            folder="algiers-iemg",
            title="Algiers needle EMG (Messekher et al. 2023): 397 recordings of 238 people (50 healthy, 95 "
            "myopathy, 93 neuropathy), deltoid and biceps, 32,768 Hz, Mustapha Pacha University Hospital",
            citation="A. Messekher, S. Mekaoui, M. Kedir-Talha, M. I. Kediha, F. Mostefaoui, Electromyographic data "
            "recordings during isometric contractions of the biceps brachii and deltoid collected from patients "
            "and healthy subjects, Mendeley Data, V1, 2023, doi:10.17632/543xpjycj9.1",
            terms="Mendeley Data's default licence is CC BY 4.0 (not confirmed for this record): cite the above",
            uses="all 397 recordings, as distributed (.asc text files in their class and muscle folders)",
            size_text="397 files, about 715 MB of text",
            sources=(
                Source(
                    "GitHub massimocoppotelli/EMG-Based_Neuropathy_Diagnosis at commit 88b3eec",
                    "https://raw.githubusercontent.com/massimocoppotelli/EMG-Based_Neuropathy_Diagnosis/"
                    "88b3eec4b46a58bee28ebd144309abed065126ec/Dataset/EMG Dataset Repository".replace(" ", "%20"),
                ),
            ),
            read_with="emg-cv experiment=algiers_qemg_kfold10",
            by_hand="https://data.mendeley.com/datasets/543xpjycj9/1 (unpack it; its layout is not checked here)",
        ),
        FetchableSet(
            name="physionet-emgdb",
            folder="physionet-emgdb",
            title="PhysioNet Examples of Electromyograms (emgdb 1.0.0): 3 records (healthy, myopathy, neuropathy), "
            "one person each, 4 kHz",
            citation="Goldberger A.L. et al., PhysioBank, PhysioToolkit, and PhysioNet, Circulation "
            "101(23):e215-e220, 2000; physionet.org/content/emgdb/1.0.0",
            terms="Open Data Commons Attribution License v1.0 (PhysioNet's page for emgdb 1.0.0)",
            uses="a three-person demonstration set: one person per class cannot be split by subject, so it serves "
            "emg-predict / emg-eval and readers, not cross-validation",
            size_text="6 files, under 1 MB",
            sources=(Source("PhysioNet", "https://physionet.org/files/emgdb/1.0.0"),),
            read_with="emg-data data=wfdb data.root=DIR data.manifest=DIR/records.csv 'data.classes=null'",
            manifest=(
                ("emg_healthy", "healthy", "normal"),
                ("emg_myopathy", "myopathy", "myopathy"),
                ("emg_neuropathy", "neuropathy", "neuropathy"),
            ),
        ),
    )
}


def get_set(name: str) -> FetchableSet:
    if name not in FETCHABLE:
        raise ConfigError(f"no data set is named {name!r}; fetchable: {', '.join(FETCHABLE)} (emg-data fetch --list)")
    return FETCHABLE[name]


def data_dir() -> Path:
    """Where fetched sets go: EMG_DATA_DIR, else the per-user data folder."""
    if os.environ.get("EMG_DATA_DIR"):
        return Path(os.environ["EMG_DATA_DIR"]).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("emg-lightning", appauthor=False))


def read_marker(folder: Path) -> dict | None:
    """The completion record of a fetch into ``folder`` (None when absent or unreadable)."""
    try:
        return json.loads((folder / COMPLETE_MARKER).read_text())
    except (OSError, ValueError):
        return None


def fetched_root(name: str) -> Path | None:
    """The folder of a completed, verified fetch of set ``name`` under the data folder, or None. A fetch made with
    another registry (an older or newer emg-lightning) does not count: fetch again to re-verify."""
    dataset = get_set(name)
    folder = data_dir() / dataset.folder
    marker = read_marker(folder)
    if marker is None or marker.get("registry_sha256") != dataset.registry_sha256():
        return None
    return folder
