"""An ensemble of finished cross-validations of the same split, as a CV folder of its own (the library behind
emg-ensemble): each test window's probabilities are the mean of the members' probabilities for that window, each
member weighing the same (with a record-level member, each window's weight in its record is the members' mean
share, a window-level member's share being 1 / windows). The folder holds per-fold predictions.csv / metrics.json
like emg-cv's, so emg-cv-report, emg-compare and anything else that reads a CV folder treat the ensemble like any
model.

Seeds: a member run with several seeds contributes its seed s to the ensemble's seed s; a member with a single
seed (a deterministic model such as the qEMG baseline) contributes that run to every seed. Members with several
seeds must share them.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from emg_lightning.metrics.aggregate import levels_of, record_shares
from emg_lightning.reports.compare import check_comparable, load_cv
from emg_lightning.reports.cv_summary import PLAN, report
from emg_lightning.run_files.predictions import prediction_lines
from emg_lightning.runtime.errors import DataError
from emg_lightning.runtime.files import atomic_write_json, atomic_write_text, user_umask

ENSEMBLE_FILE = "ensemble.json"
# The most cautious provenance of the members' hyperparameters is the ensemble's
HPARAMS_ORDER = ("fixed", "nested", "outside")


def ensemble_seeds(members: list[dict]) -> list:
    """The ensemble's seeds: those of its members run with several seeds (which must agree), else the first
    member's one seed."""
    several = [m for m in members if len(m["seeds"]) > 1]
    if not several:
        return list(members[0]["seeds"])
    seeds = several[0]["seeds"]
    for member in several[1:]:
        if member["seeds"] != seeds:
            raise DataError(
                f"{several[0]['dir']} has seeds {seeds} and {member['dir']} {member['seeds']}: members run with "
                f"several seeds must share them (a member with one seed is reused for every seed)"
            )
    return list(seeds)


def mean_probabilities(rows_of_members: list[list[dict]], where: str) -> list[dict]:
    """Rows of one fold and seed: each window's probabilities averaged over the members (same windows required)."""
    keyed = []
    for rows in rows_of_members:
        by_window = {(r["subject"], r["record"], r["window"]): r for r in rows}
        if len(by_window) != len(rows):
            raise DataError(f"{where}: a member lists a window twice: rerun that fold")
        keyed.append(by_window)
    if len({levels_of(rows, where) for rows in rows_of_members}) > 1:
        raise DataError(
            f"{where}: a member predicts whole records (window -1) and another windows: an ensemble averages the same "
            f"windows' probabilities; compare such models with emg-compare instead"
        )
    first = keyed[0]
    for other in keyed[1:]:
        if set(other) != set(first):
            extra = sorted(set(other) ^ set(first))[:3]
            raise DataError(
                f"{where}: the members tested different windows (e.g. {extra}): an ensemble needs the same data "
                f"settings (window, hop, quality rules) in every member"
            )
    # a record-level member's attention weights, as shares of each record: averaged like the probabilities
    weighted = any("weight" in r for rows in rows_of_members for r in rows)
    shares = [dict(zip(by_window, record_shares(list(by_window.values())))) for by_window in keyed]
    rows = []
    for key in sorted(first):
        labels = {members[key]["label"] for members in keyed}
        if len(labels) > 1:
            raise DataError(f"{where}: window {key} has labels {sorted(labels)} in different members")
        row = {**first[key], "probabilities": np.mean([m[key]["probabilities"] for m in keyed], axis=0)}
        row.pop("weight", None)
        if weighted:
            row["weight"] = float(np.mean([s[key] for s in shares]))
        rows.append(row)
    return rows


def build_ensemble(cv_dirs: list[str | Path], out_dir: str | Path, name: str | None = None) -> dict:
    """Write the ensemble of ``cv_dirs`` into ``out_dir`` (which must not exist) and its CV summary; return it."""
    out_dir = Path(out_dir)
    if len(cv_dirs) < 2:
        raise DataError("an ensemble needs at least two CV folders")
    if out_dir.exists():
        raise DataError(f"{out_dir} already exists: choose another --out, or delete it to rebuild the ensemble")
    members = [load_cv(d) for d in cv_dirs]
    check_comparable(members)
    seeds = ensemble_seeds(members)
    classes = members[0]["classes"]
    protocol = members[0]["protocol"]
    sources = [m["protocol"].get("hparams", {}).get("source", "fixed") for m in members]
    source = max(sources, key=lambda s: HPARAMS_ORDER.index(s) if s in HPARAMS_ORDER else len(HPARAMS_ORDER))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    staging.chmod(0o777 & ~user_umask())
    try:
        for seed in seeds:
            for fold in sorted(members[0]["fold_subjects"]):
                where = f"fold {fold}, seed {seed}"
                rows = mean_probabilities(
                    [_rows(m, fold, seed if len(m["seeds"]) > 1 else m["seeds"][0]) for m in members], where
                )
                folder = staging / f"seed_{seed}" / f"fold_{fold:02d}"
                folder.mkdir(parents=True)
                lines = prediction_lines(({**r, "fold": fold, "seed": seed} for r in rows), classes)
                atomic_write_text(folder / "predictions.csv", "\n".join(lines) + "\n")
                atomic_write_json(
                    folder / "metrics.json",
                    {
                        "fold": fold,
                        "seed": seed,
                        "split": protocol.get("split"),
                        "leaky": protocol.get("leaky"),
                        "test_subjects": sorted(members[0]["fold_subjects"][fold]),
                        "ensemble_of": [m["dir"] for m in members],
                    },
                )
                atomic_write_text(folder / "config.yaml", f"hparams_source: {source}\n")
        folds = sorted(members[0]["fold_subjects"])
        atomic_write_json(staging / PLAN, {"folds": folds, "seeds": seeds, "settings": {}})
        atomic_write_json(
            staging / ENSEMBLE_FILE,
            {
                "members": [{"dir": m["dir"], "seeds": m["seeds"]} for m in members],
                "rule": "mean of the members' window probabilities, each member weighing the same; a member with "
                "one seed is reused for every seed; with a record-level member, each window's weight in its record "
                "is the mean of its share in each member (1 / windows for window-level members)",
                "seeds": seeds,
            },
        )
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report(out_dir, name or "ensemble of " + " + ".join(m["name"] for m in members))


def _rows(member: dict, fold: int, seed) -> list[dict]:
    for f in member["folds"]:
        if f["fold"] == fold and f["seed"] == seed:
            return f["rows"]
    raise DataError(f"{member['dir']} has no fold {fold} of seed {seed}")
