"""One GPU per job when several jobs share a machine (launcher=local_parallel): a job locks the first free GPU.

Locks are ``fcntl.flock`` on files in a shared folder, so they vanish with the process that held them (a killed job
never leaves a GPU claimed) and work across the joblib launcher's worker processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from emg_lightning.runtime.errors import ConfigError

LOCK_DIR = Path(os.environ.get("EMG_DEVICE_LOCK_DIR", Path(tempfile.gettempdir()) / "emg-lightning-devices"))


@contextlib.contextmanager
def claim_device(
    count: int, lock_dir: Path | None = None, timeout_s: float = 3600.0, poll_s: float = 1.0
) -> Iterator[int]:
    """Index of a device no other job holds, held until the block ends; waits while all ``count`` are busy."""
    if count < 1:
        raise ConfigError("claim_device=true needs at least one GPU: none is visible (use launcher=sequential)")
    folder = lock_dir or LOCK_DIR
    folder.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    while True:
        for index in range(count):
            handle = open(folder / f"device-{index}.lock", "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield index
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        if time.monotonic() > deadline:
            raise ConfigError(
                f"no free GPU among {count} after {timeout_s:.0f} s: lower hydra.launcher.n_jobs to "
                f"the number of GPUs, or remove stale jobs"
            )
        time.sleep(poll_s)
