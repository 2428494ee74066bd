"""emg-compare through its command line: the paired report on two CV folders and the refusal of a missing one."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO, write_cv

SUBJECTS = {f"S{i:02d}": (i, "als" if i % 2 else "normal") for i in range(8)}


def test_emg_compare_command(tmp_path):
    a = write_cv(tmp_path / "a", {s: 0.6 for s in SUBJECTS}, SUBJECTS)
    b = write_cv(tmp_path / "b", {s: 0.7 for s in SUBJECTS}, SUBJECTS)
    result = subprocess.run(
        [sys.executable, "-m", "emg_lightning.cli.compare", str(a), str(b), "--resamples", "200"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| window |" in result.stdout and (tmp_path / "compare-a-vs-b" / "comparison.json").is_file()
    bad = subprocess.run(
        [sys.executable, "-m", "emg_lightning.cli.compare", str(a), str(tmp_path / "nope")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: CV folder") and "Traceback" not in bad.stderr
