"""emg-data fetch against a local HTTP server on 127.0.0.1 serving real files of ../shared in each source's layout:
a good fetch that the readers then use by default, and every refusal (a corrupted file, a Git LFS pointer, a dead
source, a cut connection, a damaged tree, no permission, a full disk, a refusing proxy). Nothing leaves the machine."""

from __future__ import annotations

import csv
import errno
import hashlib
import os
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest

from emg_lightning.cli.data import main as emg_data
from emg_lightning.data.fetch import download, sets
from emg_lightning.data.fetch.download import fetch_set
from emg_lightning.data.fetch.sets import COMPLETE_MARKER, FETCHABLE, Source, fetched_root

from conftest import run_main

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
N2001 = SHARED / "emglab-n2001-bb"
ALGIERS_ORIGINALS = SHARED / "algiers-iemg" / "original-sample"
needs_n2001 = pytest.mark.skipif(
    not (N2001 / "records.csv").is_file(), reason="real-data test: ../shared/data/emglab-n2001-bb is not here"
)
needs_algiers = pytest.mark.skipif(
    not ALGIERS_ORIGINALS.is_dir(), reason="real-data test: ../shared/data/algiers-iemg/original-sample is not here"
)
# one record of each of 3 subjects per class: enough people for a leave-one-subject-out CV with validation subjects
SUBSET = [
    f"N2001{record}"
    for record in ("A01BB01", "A03BB51", "A04BB51", "C01BB51", "C02BB51", "C03BB51", "M02BB01", "M03BB01", "M04BB51")
]


class Mirror:
    """A local HTTP server of ``files`` (URL path -> bytes) with byte ranges, and faults on request: ``cut``
    (the first answer of a path stops halfway), ``corrupt``, ``lfs`` (a Git LFS pointer instead), ``ranges``
    (False: ignore Range headers, as some servers do). Records every request's path and Range header."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files, self.cut, self.corrupt, self.lfs, self.ranges = files, set(), set(), set(), True
        self.requests: list[tuple[str, str | None]] = []
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                path = unquote(self.path.split("?")[0])
                mirror.requests.append((path, self.headers.get("Range")))
                if path not in mirror.files:
                    self.send_error(404)
                    return
                body = mirror.files[path]
                if path in mirror.corrupt:
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                if path in mirror.lfs:
                    body = b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 524288\n"
                start = 0
                if mirror.ranges and self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].rstrip("-"))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if path in mirror.cut:
                    mirror.cut.discard(path)
                    self.wfile.write(body[start : start + (len(body) - start) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body[start:])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once closed


@pytest.fixture
def data_home(tmp_path, monkeypatch):
    """EMG_DATA_DIR in tmp, EMGLAB_DIR / ALGIERS_DIR unset (so the default location is what is used), a registry
    folder of this test's own (subsets of the real registries), and the real sources replaced by ``set_sources``."""
    monkeypatch.setenv("EMG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("EMGLAB_DIR", raising=False)
    monkeypatch.delenv("ALGIERS_DIR", raising=False)
    registry = tmp_path / "registry"
    shutil.copytree(sets.REGISTRY_DIR, registry)
    monkeypatch.setattr(sets, "REGISTRY_DIR", registry)
    return tmp_path / "data"


def subset_registry(name: str, keep) -> list[sets.RegisteredFile]:
    """Write the rows of the real registry ``name`` whose path ``keep`` accepts into the test's registry folder."""
    real = sets.read_registry(Path(sets.__file__).parent / "registry" / f"{name}.csv")
    rows = [f for f in real if keep(f.path)]
    with open(sets.REGISTRY_DIR / f"{name}.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "sha256", "size"])
        writer.writerows([f.path, f.sha256, "" if f.size is None else f.size] for f in rows)
    return rows


def use_sources(monkeypatch, name: str, *urls: str) -> sets.FetchableSet:
    """The set ``name`` with its sources replaced by local ones (no test reaches the real servers)."""
    import dataclasses

    local = dataclasses.replace(FETCHABLE[name], sources=tuple(Source(f"local {i}", u) for i, u in enumerate(urls)))
    monkeypatch.setitem(FETCHABLE, name, local)
    return local


@pytest.fixture
def n2001_mirror():
    files = {f"/n2001/{p.name}": p.read_bytes() for r in SUBSET for p in (N2001 / f"{r}.bin", N2001 / f"{r}.hea")}
    mirror = Mirror(files)
    yield mirror
    mirror.close()


@needs_n2001
def test_fetch_from_a_mirror_then_the_readers_and_training_use_the_default_location(
    data_home, n2001_mirror, monkeypatch, tmp_path, capsys
):
    rows = subset_registry("emglab-n2001", lambda p: p.rsplit(".", 1)[0] in SUBSET)
    use_sources(monkeypatch, "emglab-n2001", closed_port_url())  # the "original" is down: the mirror serves
    code, out, err = run_main(emg_data, ["fetch", "emglab-n2001", "--mirror", f"{n2001_mirror.url}/n2001/"], capsys)
    assert code == 0, err
    assert "cite: M. Nikolic" in out and "terms:" in out  # the citation and terms come before the download
    assert f"0 files already present and verified, {len(rows)} fetched" in out
    folder = data_home / "emglab-n2001-bb"
    for f in rows:  # each file byte-identical to the reference copy, nothing left half-written
        assert hashlib.sha256((folder / f.path).read_bytes()).hexdigest() == f.sha256
    assert not list(folder.glob("*.part")) and fetched_root("emglab-n2001") == folder
    # a second fetch downloads nothing
    served = len(n2001_mirror.requests)
    code, out, _ = run_main(emg_data, ["fetch", "emglab-n2001", "--mirror", f"{n2001_mirror.url}/n2001/"], capsys)
    assert code == 0 and f"{len(rows)} files already present and verified, 0 fetched" in out
    assert len(n2001_mirror.requests) == served
    # emg-data and emg-cv without data.root read the fetched copy: a real leave-one-subject-out CV of 9 people
    code, out, err = run_main(emg_data, ["data=emglab"], capsys)
    assert code == 0, err
    assert f"root={folder} (the fetched copy of emglab-n2001)" in out
    # and so does training (emg-cv runs these folds in a subprocess, which would not see this test's subset
    # registry): fold 0 of qemg_loso, no data.root, on the fetched files
    from hydra.core.global_hydra import GlobalHydra

    from emg_lightning.training import train

    from conftest import compose_train

    monkeypatch.setenv("EMG_CACHE_DIR", str(tmp_path / "cache"))
    try:
        metrics = train(compose_train(["experiment=qemg_loso", "logger=none", "model.inner_folds=2"], tmp_path / "run"))
    finally:
        GlobalHydra.instance().clear()
    assert metrics["test_subjects"] == ["A01"] and len(metrics["train_subjects"]) + len(metrics["val_subjects"]) == 8
    assert metrics["test_windows"] > 0


def small_set(monkeypatch, *urls: str, files: dict[str, bytes]) -> sets.FetchableSet:
    """A two-file registry of the physionet-emgdb set, its files served under /db/."""
    with open(sets.REGISTRY_DIR / "physionet-emgdb.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "sha256", "size"])
        for path, body in files.items():
            writer.writerow([path, hashlib.sha256(body).hexdigest(), len(body)])
    return use_sources(monkeypatch, "physionet-emgdb", *urls)


@pytest.fixture
def two_files():
    body = {"emg_healthy.dat": os.urandom(300_000), "emg_healthy.hea": b"emg_healthy 1 4000 75000\n"}
    mirror = Mirror({f"/db/{k}": v for k, v in body.items()})
    yield body, mirror
    mirror.close()


def test_a_corrupted_file_is_refused_named_and_removed(data_home, two_files, monkeypatch, capsys):
    body, mirror = two_files
    small_set(monkeypatch, f"{mirror.url}/db", files=body)
    mirror.corrupt.add("/db/emg_healthy.dat")
    code, out, err = run_main(emg_data, ["fetch", "physionet-emgdb"], capsys)
    assert code == 2 and "Traceback" not in err
    expected = hashlib.sha256(body["emg_healthy.dat"]).hexdigest()
    got = hashlib.sha256(bytes([body["emg_healthy.dat"][0] ^ 0xFF]) + body["emg_healthy.dat"][1:]).hexdigest()
    assert f"emg_healthy.dat: local 0: checksum mismatch: expected sha256 {expected}, got {got}" in err
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith("error: 1 of 2 files of physionet-emgdb could not be fetched and verified (first: emg_healthy.dat")
    )
    folder = data_home / "physionet-emgdb"
    assert not (folder / "emg_healthy.dat").exists() and not (folder / "emg_healthy.dat.part").exists()
    assert (folder / "emg_healthy.hea").read_bytes() == body["emg_healthy.hea"]  # the good file is kept
    assert not (folder / COMPLETE_MARKER).exists() and fetched_root("physionet-emgdb") is None


def test_a_git_lfs_pointer_is_named_as_such(data_home, two_files, monkeypatch):
    body, mirror = two_files
    dataset = small_set(monkeypatch, f"{mirror.url}/db", files=body)
    mirror.lfs.add("/db/emg_healthy.dat")
    report = fetch_set(dataset, data_home / "db")
    assert report.failed == {
        "emg_healthy.dat": ["local 0: it served a Git LFS pointer file, not the data (the removed copy was a pointer)"]
    }


def test_a_dead_or_wrong_first_source_falls_through_to_the_next(data_home, two_files, monkeypatch):
    body, mirror = two_files
    dataset = small_set(monkeypatch, closed_port_url(), f"{mirror.url}/missing", f"{mirror.url}/db", files=body)
    report = fetch_set(dataset, data_home / "db")
    assert not report.failed and sorted(report.fetched) == sorted(body)
    assert (data_home / "db" / "emg_healthy.dat").read_bytes() == body["emg_healthy.dat"]
    assert ("/missing/emg_healthy.dat", None) in mirror.requests  # the 404 was tried before the good source
    # with every source dead, each is named in the file's reasons
    dataset = small_set(monkeypatch, closed_port_url(), f"{mirror.url}/missing", files=body)
    report = fetch_set(dataset, data_home / "db2")
    reasons = report.failed["emg_healthy.dat"]
    assert reasons[0].startswith("local 0: cannot download") and reasons[1].startswith("local 1: HTTP 404")


@pytest.mark.parametrize("ranges", [True, False])
def test_a_cut_connection_resumes_or_restarts_and_ends_verified(data_home, two_files, monkeypatch, ranges):
    body, mirror = two_files
    dataset = small_set(monkeypatch, f"{mirror.url}/db", files=body)
    mirror.cut.add("/db/emg_healthy.dat")
    mirror.ranges = ranges
    report = fetch_set(dataset, data_home / "db")
    assert not report.failed
    assert (data_home / "db" / "emg_healthy.dat").read_bytes() == body["emg_healthy.dat"]
    asked = [r for p, r in mirror.requests if p == "/db/emg_healthy.dat"]
    resumed_at = int(asked[1].removeprefix("bytes=").rstrip("-"))  # what the part file held when the cut came
    assert asked[0] is None and 0 < resumed_at <= len(body["emg_healthy.dat"]) // 2
    if ranges:  # only the missing part travelled again
        assert report.bytes_fetched == len(body["emg_healthy.dat"]) + len(body["emg_healthy.hea"])


def test_an_interrupted_part_file_is_resumed_by_the_next_fetch(data_home, two_files, monkeypatch):
    body, mirror = two_files
    dataset = small_set(monkeypatch, f"{mirror.url}/db", files=body)
    folder = data_home / "db"
    folder.mkdir(parents=True)
    (folder / "emg_healthy.dat.part").write_bytes(body["emg_healthy.dat"][:1000])  # left by a killed fetch
    report = fetch_set(dataset, folder)
    assert not report.failed and (folder / "emg_healthy.dat").read_bytes() == body["emg_healthy.dat"]
    assert ("/db/emg_healthy.dat", "bytes=1000-") in mirror.requests


def test_verify_only_names_damage_and_a_fetch_repairs_only_that(data_home, two_files, monkeypatch, capsys):
    body, mirror = two_files
    small_set(monkeypatch, f"{mirror.url}/db", files=body)
    assert run_main(emg_data, ["fetch", "physionet-emgdb"], capsys)[0] == 0
    folder = data_home / "physionet-emgdb"
    assert (folder / "records.csv").read_text().splitlines()[1] == "emg_healthy,healthy,normal"  # the manifest
    code, out, _ = run_main(emg_data, ["fetch", "physionet-emgdb", "--verify-only"], capsys)
    assert code == 0 and "all 2 files of physionet-emgdb match their sha256" in out
    (folder / "emg_healthy.dat").write_bytes(b"damaged")
    (folder / "emg_healthy.hea").unlink()
    code, _, err = run_main(emg_data, ["fetch", "physionet-emgdb", "--verify-only"], capsys)
    assert code == 2 and "Traceback" not in err
    assert f"damaged: emg_healthy.dat: sha256 {hashlib.sha256(b'damaged').hexdigest()}" in err
    assert "missing: emg_healthy.hea" in err
    assert err.strip().splitlines()[-1] == (
        f"error: {folder}: 1 damaged and 1 missing of 2 files of physionet-emgdb; emg-data fetch physionet-emgdb "
        "repairs it (damaged files are fetched again)"
    )
    assert fetched_root("physionet-emgdb") is None  # a damaged tree is no longer read by default
    mirror.requests.clear()
    code, out, _ = run_main(emg_data, ["fetch", "physionet-emgdb"], capsys)
    assert code == 0 and "0 files already present and verified, 2 fetched" in out
    assert fetched_root("physionet-emgdb") == folder


def test_no_permission_a_full_disk_and_a_refusing_proxy_are_one_line(data_home, two_files, monkeypatch, capsys):
    body, mirror = two_files
    small_set(monkeypatch, f"{mirror.url}/db", files=body)

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    with monkeypatch.context() as m:
        m.setattr(Path, "mkdir", refuse)
        code, _, err = run_main(emg_data, ["fetch", "physionet-emgdb", "--to", "/somewhere/db"], capsys)
    assert code == 2 and err.strip().splitlines()[-1] == (
        "error: cannot write to /somewhere/db: no permission; fetch with --to a folder you can write"
    )

    real_open = open

    def full_disk(path, mode="r", *args, **kwargs):
        if str(path).endswith(".part") and "b" in mode and ("w" in mode or "a" in mode):
            return real_open("/dev/full", "wb", buffering=0)
        return real_open(path, mode, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(download, "open", full_disk, raising=False)
        code, _, err = run_main(emg_data, ["fetch", "physionet-emgdb"], capsys)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("error: the disk is full writing ")
    assert "free space or fetch with --to another disk" in err

    monkeypatch.setenv("HTTP_PROXY", closed_port_url())
    monkeypatch.setenv("NO_PROXY", "")
    code, _, err = run_main(emg_data, ["fetch", "physionet-emgdb"], capsys)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("error: the proxy refused the connection to ")


def test_nonsense_requests_are_one_line(data_home, capsys):
    for argv, message in [
        (["fetch", "n2001"], "error: no data set is named 'n2001'; fetchable: emglab-n2001, algiers, physionet-emgdb"),
        (["fetch"], "error: name a set to fetch (emg-data fetch --list shows them)"),
        (["fetch", "algiers", "--mirror", "ftp://x"], "error: --mirror ftp://x is not an http(s) URL"),
        (["fetch", "algiers", "--verify-only", "--to", "/no/such/dir"], "error: /no/such/dir does not exist"),
    ]:
        code, _, err = run_main(emg_data, argv, capsys)
        assert code == 2 and err.strip().splitlines()[-1].startswith(message), err


def test_list_says_what_is_fetched_where(data_home, two_files, monkeypatch, capsys):
    body, mirror = two_files
    small_set(monkeypatch, f"{mirror.url}/db", files=body)
    code, out, _ = run_main(emg_data, ["fetch", "--list"], capsys)
    assert code == 0 and f"data folder: {data_home} (EMG_DATA_DIR)" in out
    assert out.count("state: not fetched") == 3 and "terms: Open Data Commons Attribution License v1.0" in out
    run_main(emg_data, ["fetch", "physionet-emgdb"], capsys)
    out = run_main(emg_data, ["fetch", "--list"], capsys)[1]
    assert "fetched and verified 20" in out and f"in {data_home / 'physionet-emgdb'}" in out


@needs_algiers
def test_the_algiers_originals_fetch_into_the_distributed_layout_and_read(data_home, monkeypatch, capsys):
    originals = {f"/alg/{p.relative_to(ALGIERS_ORIGINALS).as_posix()}": p.read_bytes()
                 for p in ALGIERS_ORIGINALS.rglob("*.asc")}  # fmt: skip
    assert len(originals) == 6
    rows = subset_registry("algiers", lambda p: f"/alg/{p}" in originals)
    assert len(rows) == 6  # the registry's paths are the distributed layout, spaces and all
    mirror = Mirror(originals)
    try:
        use_sources(monkeypatch, "algiers", f"{mirror.url}/alg")
        code, out, err = run_main(emg_data, ["fetch", "algiers"], capsys)
    finally:
        mirror.close()
    assert code == 0, err
    folder = data_home / "algiers-iemg"
    assert (folder / "01_Deltoid" / "Healthy" / "EMG _001 _01_ RD_Hea.asc").is_file()
    code, out, err = run_main(emg_data, ["data=algiers"], capsys)
    assert code == 0, err
    assert "(the fetched copy of algiers)" in out and "normal" in out and "neuropathy" in out
