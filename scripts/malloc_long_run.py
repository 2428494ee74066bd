"""Minor page faults per step and resident memory over a long run of real training steps, in a fresh process.

    .venv/bin/python scripts/malloc_long_run.py reuse 40     # or: system
Prints one JSON line: the malloc setting applied, faults per step, RSS (MB) after each step, seconds per step.
Native ALSNet (23,437-sample windows), batch 8, Adam: activation maps of 1-100 MB allocated and freed every step.
Unset MALLOC_MMAP_MAX_ / MALLOC_TRIM_THRESHOLD_ first, or the environment decides instead of the argument.
"""

import json
import resource
import sys
import time

import torch
import torch.nn.functional as F

from emg_lightning.models import ALSNet
from emg_lightning.runtime.malloc import configure_malloc

said = configure_malloc(sys.argv[1])
torch.manual_seed(0)
net = ALSNet(num_classes=3)
optimizer = torch.optim.Adam(net.parameters(), 1e-3)
x, y = torch.randn(8, 1, 23437) * 50, torch.randint(0, 3, (8,))
faults, rss_mb, step_s = [], [], []
for _ in range(int(sys.argv[2])):
    before, started = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    optimizer.zero_grad()
    F.cross_entropy(net(x), y).backward()
    optimizer.step()
    step_s.append(round(time.perf_counter() - started, 4))
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    with open("/proc/self/statm") as statm:
        rss_mb.append(int(statm.read().split()[1]) * 4096 // 2**20)
print(json.dumps({"malloc": said, "faults": faults, "rss_mb": rss_mb, "step_s": step_s}))
