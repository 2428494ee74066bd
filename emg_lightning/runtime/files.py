"""Atomic file output: write to a temporary name in the same folder, then rename. What is written keeps the user's
umask (a lab group can read results), and JSON is strict JSON: undefined figures are ``null``, never a bare NaN."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def user_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~user_umask())  # mkstemp makes 0600: readable by its owner only
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save_figure(fig: Any, path: str | os.PathLike, dpi: int = 110) -> str:
    """A matplotlib figure as PNG, written under a temporary name and renamed; returns the file's name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a name of its own: two processes finishing one CV folder at once must not share (and rename away) one file
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(handle)
    try:
        fig.savefig(tmp, dpi=dpi)
        os.chmod(tmp, 0o666 & ~user_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path.name


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by None (JSON's null), at any depth."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def atomic_write_json(path: str | os.PathLike, payload: Any) -> None:
    """Strict JSON (any parser reads it): an undefined metric is null, not 0 and not a bare NaN."""
    atomic_write_text(path, json.dumps(json_safe(payload), indent=2, sort_keys=True, allow_nan=False) + "\n")


def source_version(*paths: Path) -> str:
    """A short hash of these source files' bytes: part of a cache key, so that a change to the code that computes a
    cached value gives it a new key (a stale value is never read back, and no version number has to be remembered)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).name.encode())
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:12]
