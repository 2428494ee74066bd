"""Fetch a set's files and verify each against its registry sha256.

Per file: a present copy with the right checksum is kept; otherwise the file is downloaded from each source in turn
(a ``--mirror`` first) into ``NAME.part`` beside its final name, resumed with an HTTP byte range where a previous
try left part of it (restarted where the server does not resume), hashed, and renamed to its final name only when
the checksum matches. A cut connection is retried; a dead source, a wrong checksum or a Git LFS pointer served in
place of the data falls through to the next source, each named in the end's error. ``fetched.json`` is written
last, once every file is verified.

Why not pooch (which MNE, MOABB and braindecode use): its HTTP downloader starts a cut download over from byte 0
and ``retrieve`` removes the partial file; the Algiers set is 715 MB of text in 397 files, where a resume saves the
transfer. The HTTP is ``requests`` (proxies from the environment, as pooch), the bar ``tqdm``.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import requests

from emg_lightning.data.fetch.sets import COMPLETE_MARKER, FetchableSet, RegisteredFile, Source
from emg_lightning.runtime.errors import EMGLightningError
from emg_lightning.runtime.files import atomic_write_json, atomic_write_text

CHUNK = 1 << 16
TRIES_PER_SOURCE = 3  # a cut connection is resumed this many times before the next source
TIMEOUT_S = (10, 60)  # connect, read
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"


class FetchError(EMGLightningError):
    """A fetch that cannot finish as asked: the message names the file, the source and what to do."""


class SourceFailed(Exception):
    """One source could not give one file (the reason is the message); the next source is tried."""


@dataclass
class FetchReport:
    folder: Path
    kept: int = 0  # present and verified
    fetched: list[str] = field(default_factory=list)
    failed: dict[str, list[str]] = field(default_factory=dict)  # path -> each source's reason
    bytes_fetched: int = 0


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_tree(folder: Path, files: list[RegisteredFile]) -> tuple[list[str], dict[str, str]]:
    """(missing paths, {damaged path: the checksum it has}) of ``files`` under ``folder``."""
    missing, damaged = [], {}
    for entry in files:
        path = folder / entry.path
        if not path.is_file():
            missing.append(entry.path)
        else:
            got = sha256_of(path)
            if got != entry.sha256:
                damaged[entry.path] = got
    return missing, damaged


def sources_of(dataset: FetchableSet, mirror: str | None) -> list[Source]:
    checked = [s for s in dataset.sources if s.checked]
    unchecked = [s for s in dataset.sources if not s.checked]
    return ([Source(f"mirror {mirror}", mirror)] if mirror else []) + checked + unchecked


def fetch_set(
    dataset: FetchableSet,
    folder: Path,
    mirror: str | None = None,
    progress: Callable[[int], None] | None = None,
    session: requests.Session | None = None,
) -> FetchReport:
    """Every file of ``dataset`` verified under ``folder``; the report says what was kept, fetched and failed.
    ``progress(bytes)`` is told of every chunk written. Raises FetchError for what stops every file (no
    permission, disk full, a refusing proxy); a file no source could give is in ``report.failed``."""
    session = session or requests.Session()
    report = FetchReport(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / COMPLETE_MARKER).unlink(missing_ok=True)  # the tree is about to change: not complete until verified
    except PermissionError as exc:
        raise no_permission(folder) from exc
    sources = sources_of(dataset, mirror)
    for entry in dataset.files():
        final = folder / entry.path
        if final.is_file() and sha256_of(final) == entry.sha256:
            report.kept += 1
            if progress and entry.size:
                progress(entry.size)
            continue
        reasons = []
        for source in sources:
            try:
                written = _fetch_file(session, source.url_of(entry.path), final, entry, progress)
            except SourceFailed as exc:
                reasons.append(f"{source.label}: {exc}")
                continue
            report.fetched.append(entry.path)
            report.bytes_fetched += written
            break
        else:
            report.failed[entry.path] = reasons
    if not report.failed:
        _finish(dataset, folder, report)
    return report


def _fetch_file(
    session: requests.Session,
    url: str,
    final: Path,
    entry: RegisteredFile,
    progress: Callable[[int], None] | None,
) -> int:
    """Download ``url`` to ``final``'s ``.part`` (resuming what is there), verify it and rename it into place.
    Returns the bytes transferred; raises SourceFailed (this source cannot give the file) or FetchError."""
    part = final.with_name(final.name + ".part")
    try:
        part.parent.mkdir(parents=True, exist_ok=True)
    except PermissionError as exc:
        raise no_permission(part.parent) from exc
    transferred, cut = 0, None
    for _ in range(TRIES_PER_SOURCE):
        before = _size(part)
        try:
            transferred += _transfer(session, url, part, progress)
            cut = None
            break
        except requests.exceptions.ProxyError as exc:
            raise FetchError(
                f"the proxy refused the connection to {url} ({_first_line(exc)}): check HTTPS_PROXY / "
                f"HTTP_PROXY, or fetch with --mirror from a server you can reach"
            ) from exc
        except (
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
        ) as exc:
            if _size(part) <= before:  # nothing arrived: the source is down, not a cut
                raise SourceFailed(f"cannot download ({_first_line(exc)})") from exc
            transferred += _size(part) - before
            cut = exc  # part of the file arrived: resume from there
    if cut is not None:
        raise SourceFailed(f"the connection was cut {TRIES_PER_SOURCE} times ({_first_line(cut)})")
    got = sha256_of(part)
    if got != entry.sha256:
        head = part.read_bytes()[: len(LFS_POINTER)]
        part.unlink()
        if head == LFS_POINTER:
            raise SourceFailed("it served a Git LFS pointer file, not the data (the removed copy was a pointer)")
        raise SourceFailed(f"checksum mismatch: expected sha256 {entry.sha256}, got {got} (the bad copy was removed)")
    os.replace(part, final)
    return transferred


def _transfer(session: requests.Session, url: str, part: Path, progress: Callable[[int], None] | None) -> int:
    """Append the rest of ``url`` to ``part`` (a byte range from its size), or write it whole where the server
    sends the whole file. Returns the bytes written."""
    start = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={start}-"} if start else {}
    try:
        response = session.get(url, headers=headers, stream=True, timeout=TIMEOUT_S)
    except requests.exceptions.InvalidURL as exc:
        raise SourceFailed(f"not a URL ({exc})") from exc
    with response:
        if response.status_code == 416:  # the part is already whole (or longer): start over
            part.unlink()
            return _transfer(session, url, part, progress)
        if response.status_code >= 400:
            raise SourceFailed(f"HTTP {response.status_code} {response.reason} for {url}")
        mode = "ab" if response.status_code == 206 and start else "wb"
        written = 0
        try:
            with open(part, mode) as handle:
                for chunk in response.iter_content(CHUNK):
                    handle.write(chunk)
                    written += len(chunk)
                    if progress:
                        progress(len(chunk))
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                part.unlink(missing_ok=True)
                raise FetchError(
                    f"the disk is full writing {part}: free space or fetch with --to another disk"
                ) from exc
            if isinstance(exc, PermissionError):
                raise no_permission(part) from exc
            raise
        return written


def no_permission(path: Path) -> FetchError:
    return FetchError(f"cannot write to {path}: no permission; fetch with --to a folder you can write")


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _finish(dataset: FetchableSet, folder: Path, report: FetchReport) -> None:
    """Write the set's manifest where its reader needs one, then the completion record (last)."""
    if dataset.manifest:
        rows = ["record,subject,label"] + [",".join(row) for row in dataset.manifest]
        atomic_write_text(folder / "records.csv", "\n".join(rows) + "\n")
    atomic_write_json(
        folder / COMPLETE_MARKER,
        {
            "set": dataset.name,
            "files": len(dataset.files()),
            "registry_sha256": dataset.registry_sha256(),
            "verified_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) < 160 else text[:157] + "..."
