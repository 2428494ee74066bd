"""What a run's resolved settings mean for its results (pure functions): which keys are only about where and how it
runs, what one CV folder's jobs share, and the short hash that names a configuration."""

from __future__ import annotations

import hashlib
import json
from typing import Any

# Settings that do not change a run's result, as dotted paths: a rerun may differ in them (or a folder written before
# they existed may lack them) and still resume or skip the folder. Where and how it runs (device, allocator, workers,
# paths, loggers, progress display) and how it is labelled, never what is computed.
RUNTIME_KEYS = (
    "claim_device", "ckpt_path", "malloc", "threads", "tags", "print_config", "task_name", "paths", "logger",
    "data.num_workers", "callbacks.progress_bar", "callbacks.model_summary", "trainer.log_every_n_steps",
    "trainer.accelerator", "trainer.devices", "trainer.enable_progress_bar",
)  # fmt: skip
# Settings added after folders were written, at values that change nothing: equal to absent (old folders resume)
NEUTRAL_SETTINGS = {"augmentation": {"name": "none"}}
# What differs between the jobs of one CV (each fold folder holds one of each)
PER_JOB_KEYS = ("data.fold", "seed")


def what_matters(settings: dict[str, Any], drop: tuple[str, ...] = RUNTIME_KEYS) -> dict[str, Any]:
    """``settings`` without the dotted keys in ``drop`` and without the places inside the run's own folder
    (checkpoint dirpath, default_root_dir: ``${paths.output_dir}/...``): what decides a run's numbers."""
    output_dir = (settings.get("paths") or {}).get("output_dir") if drop is RUNTIME_KEYS else None
    kept = _without_locations(settings, str(output_dir)) if output_dir else dict(settings)
    if drop is RUNTIME_KEYS:
        kept = {k: v for k, v in kept.items() if NEUTRAL_SETTINGS.get(k, object()) != v}
    for key in drop:
        head, _, rest = key.partition(".")
        if not rest:
            kept.pop(head, None)
        elif isinstance(kept.get(head), dict):
            kept[head] = what_matters(kept[head], (rest,))
    return kept


def _without_locations(tree: dict[str, Any], output_dir: str) -> dict[str, Any]:
    kept = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            kept[key] = _without_locations(value, output_dir)
        elif not (isinstance(value, str) and (value == output_dir or value.startswith(output_dir.rstrip("/") + "/"))):
            kept[key] = value
    return kept


def differing_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the leaves that differ between two settings trees (a key present in one only counts)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b), key=str)
        return [d for k in keys for d in differing_keys(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [prefix.rstrip(".")]


def cv_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """What one CV folder's jobs share: the settings without runtime and per-job keys (fold, seed, and the values a
    nested search chose for each fold)."""
    per_job = PER_JOB_KEYS + tuple(settings.get("hparams_searched") or ())
    return what_matters(what_matters(settings), per_job)


def settings_hash(settings: dict[str, Any]) -> str:
    """8 hex digits naming one configuration (runtime and per-job keys excluded). A null setting counts as absent,
    as in ``differing_keys``: a key added later with a null default does not rename existing configurations."""
    payload = json.dumps(_without_nulls(cv_settings(settings)), sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:8]


def _without_nulls(tree: dict[str, Any]) -> dict[str, Any]:
    return {k: _without_nulls(v) if isinstance(v, dict) else v for k, v in tree.items() if v is not None}
