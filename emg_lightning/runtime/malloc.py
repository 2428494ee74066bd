"""Keep freed CPU memory for the next training step instead of handing it back to the kernel (glibc malloc).

Why: glibc serves each allocation above its mmap threshold (128 KiB at start, dynamic up to 32 MiB) with fresh
pages from the kernel, unmaps them on free and trims the heap's top. A 1-D CNN on one-second EMG windows allocates
activation maps of 1-100 MB on every step, so every step page-faults them in again, zero-filled: native ALSNet
(batch 8) takes ~450,000 page faults per step, more than half its CPU step time (experiments/benchmarks.md).
With mmap and trimming off, freed blocks are reused; the cost is that the process keeps its peak heap.
PyTorch's CPU tuning guide reaches the same end by preloading jemalloc or tcmalloc; a preloaded allocator is left
alone here.
"""

from __future__ import annotations

import ctypes
import os
import platform

from emg_lightning.runtime.errors import ConfigError

MALLOC_MODES = ("reuse", "system")
# mallopt(3) parameters
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
# For child processes (spawned DDP ranks, SLURM/joblib jobs): glibc reads these once at start-up.
CHILD_ENVIRONMENT = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**40)}
_PRELOADED_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")
_REUSING = "glibc malloc keeps freed memory (mmap off, trim off; malloc=system for the defaults)"
_applied = False


def configure_malloc(mode: str) -> str:
    """Applies ``malloc=reuse`` (mmap off, heap trimming off) to this process and its children, or leaves the
    system allocator as it is (``system``); returns what was done, in words."""
    global _applied
    if mode not in MALLOC_MODES:
        raise ConfigError(
            f"malloc={mode!r} is unknown: use reuse (keep freed memory for the next step, faster "
            f"CPU training) or system (the C library's defaults)"
        )
    if mode == "system":
        return "system allocator (malloc=system)"
    if _applied:
        return _REUSING
    chosen = sorted(k for k in CHILD_ENVIRONMENT if k in os.environ)
    chosen += ["GLIBC_TUNABLES"] if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "") else []
    if chosen:
        return f"malloc settings from the environment ({', '.join(chosen)}): left as they are"
    preloaded = [name for name in _PRELOADED_ALLOCATORS if name in os.environ.get("LD_PRELOAD", "")]
    if preloaded:
        return f"{preloaded[0]} preloaded (LD_PRELOAD): left as it is"
    libc = _glibc()
    if libc is None:
        return f"system allocator: not glibc ({platform.system()}), nothing to tune"
    if libc.mallopt(_M_MMAP_MAX, 0) != 1 or libc.mallopt(_M_TRIM_THRESHOLD, -1) != 1:
        return "system allocator: glibc refused mallopt"
    os.environ.update(CHILD_ENVIRONMENT)
    _applied = True
    return _REUSING


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux":
        return None
    try:
        libc = ctypes.CDLL(None)
        _ = libc.gnu_get_libc_version  # only glibc has it (musl does not)
        return libc
    except (OSError, AttributeError):
        return None
