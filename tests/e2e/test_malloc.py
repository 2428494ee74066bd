"""malloc=reuse: freed CPU memory is reused instead of page-faulted in again on every training step."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from emg_lightning.runtime import malloc
from emg_lightning.runtime.errors import ConfigError
from emg_lightning.runtime.malloc import CHILD_ENVIRONMENT, configure_malloc

# In a fresh process: allocates 64 MiB straight from glibc (ctypes), touches every page and frees it, twelve times, with
# no other allocation in between (so the freed block always merges back and fits the next request); reports the
# minor page faults of the last three rounds, whether the block came from mmap (mallinfo2's hblkhd) and how much
# freed memory the process keeps (fordblks), what configure_malloc said, and what a child process inherits.
# (A torch tensor is not used here: its small bookkeeping allocations land between rounds at places that depend on
# the process's memory layout, and can leave a freed aligned block just too small to reuse -- which made this test
# fail in some fresh processes although the setting had been applied; see experiments/malloc-reuse.md.)
FAULTS_PER_ROUND = r"""
import ctypes, json, resource, subprocess, sys
from emg_lightning.runtime.malloc import configure_malloc
said = configure_malloc(sys.argv[1])
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]
libc.mallinfo2.restype = MallInfo2
size = 64 * 2**20
faults, mmapped, kept = [], [], []
for _ in range(12):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    mmapped.append(libc.mallinfo2().hblkhd >= size)
    libc.free(block)
    kept.append(libc.mallinfo2().fordblks >= size)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
child = subprocess.run([sys.executable, "-c", "import os; print(os.environ.get('MALLOC_MMAP_MAX_'))"],
                       capture_output=True, text=True).stdout.strip()
print(json.dumps({"said": said, "faults": faults[-3:], "mmapped": mmapped, "kept": kept, "child_mmap_max": child}))
"""


def run_in_fresh_process(mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in CHILD_ENVIRONMENT and k != "LD_PRELOAD"}
    result = subprocess.run(
        [sys.executable, "-c", FAULTS_PER_ROUND, mode], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
def test_reuse_keeps_freed_memory_instead_of_page_faulting_it_back_in():
    system, reuse = run_in_fresh_process("system"), run_in_fresh_process("reuse")
    if "glibc" not in reuse["said"]:
        pytest.skip(f"not a glibc system: {reuse['said']}")
    pages = 64 * 2**20 // os.sysconf("SC_PAGESIZE")
    # glibc's defaults serve a block this size with mmap and unmap it on free: every round faults it in again
    assert all(system["mmapped"]) and not any(system["kept"]), system
    assert min(system["faults"]) > pages // 2, system
    # reuse: from the heap, kept after free, and the same pages serve the next round
    assert not any(reuse["mmapped"]) and all(reuse["kept"]), reuse
    assert max(reuse["faults"]) < pages // 20, reuse
    assert reuse["child_mmap_max"] == "0" and system["child_mmap_max"] == "None"


def test_unknown_mode_names_the_setting():
    with pytest.raises(ConfigError, match=r"malloc='tcmalloc' is unknown: use reuse .* or system"):
        configure_malloc("tcmalloc")


@pytest.mark.parametrize(
    "variable, value, expected",
    [
        ("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "jemalloc preloaded (LD_PRELOAD): left as it is"),
        ("MALLOC_TRIM_THRESHOLD_", "0", "malloc settings from the environment (MALLOC_TRIM_THRESHOLD_)"),
        ("GLIBC_TUNABLES", "glibc.malloc.mmap_max=0", "malloc settings from the environment (GLIBC_TUNABLES)"),
    ],
)
def test_an_allocator_the_user_chose_is_left_alone(monkeypatch, variable, value, expected):
    monkeypatch.setattr(malloc, "_applied", False)
    for key in (*CHILD_ENVIRONMENT, "GLIBC_TUNABLES", "LD_PRELOAD"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv(variable, value)
    monkeypatch.setattr(malloc, "_glibc", lambda: pytest.fail("mallopt must not be called"))
    assert configure_malloc("reuse").startswith(expected)
    assert "MALLOC_MMAP_MAX_" not in os.environ


def test_system_mode_changes_nothing(monkeypatch):
    monkeypatch.setattr(malloc, "_applied", False)
    monkeypatch.setattr(malloc, "_glibc", lambda: pytest.fail("mallopt must not be called"))
    assert configure_malloc("system") == "system allocator (malloc=system)"
