"""EMGDataModule: one fold of a subject-level split, served from the memory-mapped window cache."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    Sampler,
    SequentialSampler,
)

from emg_lightning.data.cache import WindowTable
from emg_lightning.data.feature_cache import RecordFeatures, feature_matrix
from emg_lightning.data.readers import SourceOptions, get_source
from emg_lightning.data.readers.base import selected_records
from emg_lightning.data.readers.pooled import parts_of
from emg_lightning.data.readers.synthetic.source import spec_from_settings
from emg_lightning.data.sources import load_window_table
from emg_lightning.data.splits import Fold, check_split_settings, make_fold, random_windows
from emg_lightning.data.weighting import check_weight_by, training_sampler
from emg_lightning.data.windows import QualityRules, WindowSettings, robust_scale
from emg_lightning.features import FEATURE_SETS, describes_records, feature_names, feature_parts
from emg_lightning.runtime.errors import ConfigError, DataError

log = logging.getLogger(__name__)

NORMALIZATIONS = ("none", "zscore", "robust")
# The flat data.* keys of the configuration, by the group they belong to (EMGDataModule.from_config).
WINDOW_KEYS = ("window_s", "hop_s", "sample_rate", "trim_after_s", "bandpass_hz")
QUALITY_KEYS = ("min_std_uv", "max_saturated_fraction")
WFDB_KEYS = ("pattern", "manifest", "channel")
DIRECT_KEYS = {
    "sources",
    "label_map",
    "muscles",
    "source",
    "root",
    "classes",
    "fold",
    "synthetic",
    "normalization",
    "batch_size",
    "weight_by",
    "num_workers",
    "allow_mixed_rates",
    "features",
}


class WindowDataset(Dataset):
    """Indexed by a list of positions (one batch at a time): one fancy-indexed read of the memmap per batch.

    Items are dicts: ``x`` float32 (B, 1, samples) in microvolts (z-scored per window with ``zscore``, divided by
    the training subjects' robust scale with ``robust``), ``y`` class index,
    ``subject`` / ``record`` indices into the DataModule's ``subjects`` / ``records`` lists, ``window`` position.
    With ``features`` (n_windows, n_features), ``x`` is instead the windows' feature vectors, float32 (B, n_features).
    """

    def __init__(
        self,
        table: WindowTable,
        rows: np.ndarray,
        labels: np.ndarray,
        subjects: np.ndarray,
        records: np.ndarray,
        normalization: str,
        robust_scale_uv: float = 1.0,
        features: np.ndarray | None = None,
        context: int = 0,
        next_row: np.ndarray | None = None,
        hop: float = 0.0,
    ) -> None:
        self.table, self.rows, self.features = table, rows, features
        # training with shifts: each window comes with the next ``context`` samples of its record, taken from the
        # record's next kept window (``next_row``, -1 if none); windows start every ``hop`` samples (not rounded)
        self.context, self.next_row, self.hop = context, next_row, hop
        self.labels, self.subjects, self.records = labels, subjects, records
        self.normalization = normalization
        divisor = robust_scale_uv if normalization == "robust" else 1.0
        self.scale = np.float32(1.0 / (table.adc_gain * divisor))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, positions: Sequence[int]) -> dict[str, torch.Tensor]:
        positions = np.asarray(positions)
        rows = self.rows[positions]
        if self.features is not None:
            return {"x": torch.from_numpy(np.asarray(self.features[rows], dtype=np.float32)), **self._labels(rows)}
        order = np.argsort(rows)  # sorted reads from the memmap, then back to the sampler's order
        x = np.empty((len(rows), self.table.windows.shape[1]), dtype=np.float32)
        x[order] = self.table.windows[rows[order]]
        x *= self.scale
        if self.normalization == "zscore":
            x -= x.mean(axis=1, keepdims=True)
            x /= x.std(axis=1, keepdims=True) + 1e-6
        if self.context:
            return self._with_context(x, rows)
        return {"x": torch.from_numpy(x).unsqueeze(1), **self._labels(rows)}

    def _with_context(self, x: np.ndarray, rows: np.ndarray) -> dict[str, torch.Tensor]:
        length = x.shape[1]
        following = self.next_row[rows]
        room = np.where(following >= 0, self.context, 0)
        extended = np.zeros((len(rows), length + self.context), dtype=np.float32)
        extended[:, :length] = x
        has_next = np.flatnonzero(following >= 0)
        if len(has_next):
            # where this window's end falls in the next one: windows start at round(k * hop), so the step between
            # two starts is the hop rounded either way (a step one sample longer than the window skips that sample)
            k = self.table.columns["window"][rows[has_next]].astype(np.float64)
            step = np.round((k + 1) * self.hop) - np.round(k * self.hop)
            start = np.maximum(length - step, 0).astype(np.int64)
            successors = following[has_next]
            order = np.argsort(successors)
            tail = np.empty((len(successors), length), dtype=np.float32)
            tail[order] = self.table.windows[successors[order]]
            index = start[:, None] + np.arange(self.context)[None, :]
            extended[has_next, length:] = tail[np.arange(len(successors))[:, None], index] * self.scale
        return {
            "x": torch.from_numpy(extended).unsqueeze(1),
            "room": torch.from_numpy(room.astype(np.int64)),
            "length": torch.full((len(rows),), length, dtype=torch.int64),
            **self._labels(rows),
        }

    def _labels(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        return {
            "y": torch.from_numpy(self.labels[rows]),
            "subject": torch.from_numpy(self.subjects[rows]),
            "record": torch.from_numpy(self.records[rows]),
            "window": torch.from_numpy(self.table.columns["window"][rows].astype(np.int64)),
        }


class InOrderBatches(SequentialSampler):
    """Consecutive batches of positions, in order (one memmap read per batch), for ``debug=overfit``: a
    ``SequentialSampler``, so Lightning's ``overfit_batches`` keeps it instead of swapping in one that yields single
    windows."""

    def __init__(self, dataset: Dataset, batch_size: int) -> None:
        super().__init__(dataset)
        self.batch_size = batch_size

    def __iter__(self):
        n = len(self.data_source)
        for start in range(0, n, self.batch_size):
            yield list(range(start, min(start + self.batch_size, n)))

    def __len__(self) -> int:
        return -(-len(self.data_source) // self.batch_size)


class RecordBatches(Sampler):
    """Batches of whole records for record-level models: lists of positions into a dataset, ``batch_size`` records
    each (every window of a record in the same batch), records in a random order when ``shuffle`` (drawn from
    torch's generator, so seeded runs repeat), else in order."""

    def __init__(self, record_of_position: np.ndarray, batch_size: int, shuffle: bool) -> None:
        super().__init__()
        order = np.argsort(record_of_position, kind="stable")
        records, starts = np.unique(record_of_position[order], return_index=True)
        self.windows_of = np.split(order, starts[1:]) if len(records) else []
        self.batch_size, self.shuffle = batch_size, shuffle

    def __iter__(self):
        n = len(self.windows_of)
        records = torch.randperm(n).tolist() if self.shuffle else list(range(n))
        for start in range(0, n, self.batch_size):
            yield np.concatenate([self.windows_of[r] for r in records[start : start + self.batch_size]]).tolist()

    def __len__(self) -> int:
        return -(-len(self.windows_of) // self.batch_size)


class ShardedBatches(Sampler):
    """One process's share of a batch sampler's batches when several train together (DDP): batch i goes to rank
    i mod world, whole, never padded with repeats (a repeated window would count twice in validation). Each epoch's
    batches are drawn with torch's generator seeded by (``seed``, epoch) -- the same on every rank, so the shares
    partition the epoch -- without touching the global random state. With ``equal`` (training) every rank gets
    the same number of batches, as gradient synchronisation needs: the at most world - 1 batches left over are
    skipped that epoch (a different few each epoch)."""

    def __init__(self, batches: Sampler, rank: int, world: int, seed: int, equal: bool) -> None:
        super().__init__()
        self.batches, self.rank, self.world, self.seed, self.equal = batches, rank, world, seed, equal
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:  # called by Lightning at the start of every epoch
        self.epoch = epoch

    def __iter__(self):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + self.epoch)
            batches = list(self.batches)
        stop = len(batches) // self.world * self.world if self.equal else len(batches)
        return iter(batches[self.rank : stop : self.world])

    def __len__(self) -> int:
        n = len(self.batches)
        return n // self.world if self.equal else len(range(self.rank, n, self.world))


@dataclass(frozen=True)
class DataSelection:
    """What is read, and which of its labels are classes: the source and its reader settings, the label renaming,
    the muscles and the class list (checked here, before any record is read)."""

    source: str = "synthetic"
    options: SourceOptions = SourceOptions()
    classes: tuple[str, ...] | None = None  # which of the data's labels, in this order (None: all, sorted)
    label_map: Mapping[str, str] = field(default_factory=dict)  # labels renamed first ({als: neuropathy})
    muscles: tuple[str, ...] | None = None  # only records of these muscles (None: all)
    allow_mixed_rates: bool = True

    def __post_init__(self) -> None:
        get_source(self.source)
        spec_from_settings(dict(self.options.synthetic))  # nonsense generator settings, before any work
        if self.source == "pooled":
            parts_of(self.options)
        elif self.options.sources:
            raise ConfigError(
                f"data.sources lists sources to read together: it needs data.source=pooled, not {self.source}"
            )
        chosen = check_classes(self.classes, dict(self.label_map))
        object.__setattr__(self, "classes", None if chosen is None else tuple(chosen))


@dataclass(frozen=True)
class Serving:
    """How the windows reach a network: as samples (normalised how) or as feature vectors, in batches of how many,
    with how much following context for random shifts, whole records per batch or not."""

    normalization: str = "none"
    features: str | None = None  # serve each window's feature vector of this set (qemg) instead of its samples
    batch_size: int = 32
    num_workers: int = 0
    train_context_s: float = 0.0  # training windows come with the following seconds of their record
    whole_records: bool = False  # every batch holds whole records, batch_size records (record-level models)
    weight_by: str = "window"  # training windows count alike, or training subjects do (data/weighting.py)

    def __post_init__(self) -> None:
        try:
            check_weight_by(self.weight_by)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        if self.weight_by != "window" and self.whole_records:
            raise ConfigError(
                f"data.weight_by={self.weight_by} draws training windows by weight, but this record-level model "
                f"trains on batches of whole records: set data.weight_by=window"
            )
        if self.normalization not in NORMALIZATIONS:
            raise ConfigError(
                f"data.normalization={self.normalization!r} is unknown; available: {', '.join(NORMALIZATIONS)}"
            )
        if self.features is not None:
            feature_parts(self.features)
        if self.features is not None and self.normalization != "none":
            raise ConfigError(
                f"data.normalization={self.normalization} scales windows, but data.features={self.features} serves "
                f"feature vectors (standardised on the training set by the model): set data.normalization=none"
            )
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"data.batch_size must be >= 1, got {self.batch_size}")
        if self.train_context_s and (self.features is not None or self.normalization == "zscore"):
            raise ConfigError(
                "augmentation.shift_s shifts raw windows within their record: it needs data.features=null and "
                "data.normalization none or robust (a per-window z-score is computed before the shift)"
            )


class EMGDataModule(L.LightningDataModule):
    """Windows of one data source, split by subject: fold ``fold`` holds out its test subject(s); validation
    subjects are drawn from the training subjects only, stratified by class."""

    def __init__(
        self,
        selection: DataSelection | None = None,
        windows: WindowSettings | None = None,
        split: dict[str, Any] | None = None,
        serving: Serving | None = None,
        fold: int = 0,
        cache_dir: str = "~/.cache/emg-lightning",
    ) -> None:
        """``selection``: what is read and which labels are classes; ``windows``: how records become windows (with
        the quality rules); ``split``: the ``split.*`` settings; ``serving``: how windows reach the network. Each
        group checks itself when built. ``from_config`` takes the flat ``data.*`` keys of the configuration."""
        super().__init__()
        selection, serving = selection or DataSelection(), serving or Serving()
        self.selection, self.serving = selection, serving
        self._classes = None if selection.classes is None else list(selection.classes)
        self._resolved_classes: list[str] | None = None
        self.source, self.root = selection.source, selection.options.root
        self.source_options, self.allow_mixed_rates = selection.options, bool(selection.allow_mixed_rates)
        self.label_map = dict(selection.label_map)
        self.muscles = list(selection.muscles) if selection.muscles else None
        self.settings = windows or WindowSettings()
        self.fold_index = fold
        self.split = {"name": "loso", "seed": 0, **(split or {})}
        self.batch_size, self.num_workers = serving.batch_size, serving.num_workers
        self.normalization, self.features = serving.normalization, serving.features
        self.train_context_s, self.whole_records = float(serving.train_context_s), bool(serving.whole_records)
        self.weight_by = serving.weight_by
        self.cache_dir = cache_dir
        self.table: WindowTable | None = None
        self.feature_table: np.ndarray | None = None
        self.fold: Fold | None = None
        self.shuffle_seed = 0  # set by setup()

    @classmethod
    def from_config(
        cls,
        data: dict[str, Any],
        split: dict[str, Any] | None = None,
        cache_dir: str = "~/.cache/emg-lightning",
        train_context_s: float = 0.0,
        whole_records: bool = False,
    ) -> EMGDataModule:
        """From the flat ``data.*`` keys users type (``data.window_s``, ``data.min_std_uv``, ``data.pattern`` ...),
        grouped here into the selection, the windowing with its quality rules, and the serving."""
        data = dict(data)
        quality = {k: data.pop(k) for k in QUALITY_KEYS if k in data}
        windows = {k: data.pop(k) for k in WINDOW_KEYS if k in data}
        wfdb = {k: data.pop(k) for k in WFDB_KEYS if k in data}
        unknown = sorted(set(data) - DIRECT_KEYS)
        if unknown:
            raise ConfigError(
                f"data has no settings {unknown}; known: "
                f"{sorted(DIRECT_KEYS | set(WINDOW_KEYS) | set(QUALITY_KEYS) | set(WFDB_KEYS))}"
            )
        if windows.get("trim_after_s") is not None:
            windows["trim_after_s"] = dict(windows["trim_after_s"])
        windows["trim_after_s"] = windows.get("trim_after_s") or {}
        if windows.get("bandpass_hz"):
            windows["bandpass_hz"] = tuple(windows["bandpass_hz"])
        classes = data.get("classes")
        selection = DataSelection(
            source=data.get("source", "synthetic"),
            options=SourceOptions(
                root=data.get("root"),
                synthetic=dict(data.get("synthetic") or {}),
                sources=tuple(dict(part) for part in data.get("sources") or ()),
                **wfdb,
            ),
            classes=classes if classes is None or isinstance(classes, str) else tuple(classes),
            label_map=dict(data.get("label_map") or {}),
            muscles=tuple(data["muscles"]) if data.get("muscles") else None,
            allow_mixed_rates=data.get("allow_mixed_rates", True),
        )
        serving = Serving(
            normalization=data.get("normalization", "none"),
            features=data.get("features"),
            batch_size=data.get("batch_size", 32),
            num_workers=data.get("num_workers", 0),
            train_context_s=train_context_s,
            whole_records=whole_records,
            weight_by=data.get("weight_by", "window"),
        )
        settings = WindowSettings(**windows, quality=QualityRules(**quality))
        return cls(selection, settings, split, serving, data.get("fold", 0), cache_dir)

    def prepare_data(self) -> None:
        self.load_table()

    def load_table(self) -> WindowTable:
        if self.table is None:
            self.table = load_window_table(
                self.source,
                self.settings,
                self.cache_dir,
                self.source_options,
                self.label_map,
                self.muscles,
                self.allow_mixed_rates,
            )
        return self.table

    @property
    def classes(self) -> list[str]:
        """``data.classes``, or every label of the data (sorted) when it is null; each must occur in the data."""
        if self._resolved_classes is None:
            self._resolved_classes = self._resolve_classes()
        return self._resolved_classes

    def chosen_classes(self) -> list[str]:
        """``data.classes`` as set (absent ones included), or the data's labels when it is null: what emg-data
        summarises, where ``classes`` would refuse a class the data do not hold."""
        if self._classes is not None:
            return list(self._classes)
        return sorted(set(self.load_table().columns["label"].tolist()))

    def _resolve_classes(self) -> list[str]:
        present = sorted(set(self.load_table().columns["label"].tolist()))
        if self._classes is None:
            if len(present) < 2:
                raise DataError(f"the data hold one class only ({present}): a classifier needs two or more")
            return present
        absent = [c for c in self._classes if c not in present]
        if absent:
            hint = "" if self.label_map else " (or rename labels with data.label_map, e.g. {als: neuropathy})"
            raise DataError(
                f"data.classes={self._classes} names {', '.join(absent)}, but the data's labels are "
                f"{', '.join(present)}: choose among those{hint}"
            )
        return list(self._classes)

    def subject_labels(self) -> dict[str, str]:
        """{subject: class} for the subjects of the selected classes: what every split works on."""
        columns = self.load_table().columns
        keep = np.isin(columns["label"], self.classes)
        return dict(zip(columns["subject"][keep].tolist(), columns["label"][keep].tolist()))

    def subject_strata(self) -> dict[str, str] | None:
        """Pooled data: each subject's part and class (``n2001/normal``), so that subject k-folds deal every clinic's
        classes evenly; None (strata are the classes) for a single source."""
        if self.source != "pooled":
            return None
        return {subject: f"{subject.split(':', 1)[0]}/{label}" for subject, label in self.subject_labels().items()}

    def setup(self, stage: str | None = None) -> None:
        if self.fold is not None:
            return
        # the run's seed (set before setup), read without drawing: several processes shuffle alike from it
        self.shuffle_seed = torch.initial_seed() % 2**32
        table = self.load_table()
        label_names = table.columns["label"]
        keep = np.isin(label_names, self.classes)
        self.subjects = sorted(set(table.columns["subject"][keep]))
        self.records = sorted(set(table.columns["record"][keep]))
        self.fold = _make_fold(self.subject_labels(), self.fold_index, self.split, self.subject_strata())
        class_of = {c: i for i, c in enumerate(self.classes)}
        labels = np.array([class_of.get(name, -1) for name in label_names], dtype=np.int64)
        subject_ids = _index_of(table.columns["subject"], self.subjects)
        record_ids = _index_of(table.columns["record"], self.records)
        if self.fold.leaky:  # the split is over windows or records, not subjects
            kept = np.flatnonzero(keep)
            fractions = self.split.get("test_fraction", 0.2), self.split.get("val_fraction", 0.2), self.split["seed"]
            if self.split["name"] == "random_records":
                record_of_kept = table.columns["record"][kept]
                names = np.array(sorted(set(record_of_kept.tolist())))
                parts = [np.isin(record_of_kept, names[p]) for p in random_windows(len(names), *fractions)]
                rows = dict(zip(("train", "val", "test"), (kept[p] for p in parts)))
                what = "recordings of the same subjects"
            else:
                rows = dict(zip(("train", "val", "test"), (kept[p] for p in random_windows(len(kept), *fractions))))
                what = "windows of the same recordings and subjects"
            log.warning(
                "split=%s is LEAKY: %s are in train, validation and test (a published protocol, reproduced beside "
                "a subject-level figure, never instead of it)",
                self.split["name"],
                what,
            )
        else:
            rows = {
                part: np.flatnonzero(keep & np.isin(table.columns["subject"], getattr(self.fold, part)))
                for part in ("train", "val", "test")
            }
        self.robust_scale_uv = 1.0
        if self.normalization == "robust" and len(rows["train"]):
            sample = np.random.default_rng(self.split["seed"]).choice(
                rows["train"], min(256, len(rows["train"])), replace=False
            )
            self.robust_scale_uv = robust_scale(table.windows[np.sort(sample)] / table.adc_gain)
            log.info(
                "robust scale fitted on fold %d's training subjects: %.2f uV", self.fold_index, self.robust_scale_uv
            )
        if self.features is not None:
            self.feature_table = feature_matrix(table, self.features, self.record_features())
        sets = {
            part: WindowDataset(
                table, r, labels, subject_ids, record_ids, self.normalization, self.robust_scale_uv, self.feature_table
            )
            for part, r in rows.items()
        }
        if self.train_context_s:
            sets["train"] = WindowDataset(
                table, rows["train"], labels, subject_ids, record_ids, self.normalization, self.robust_scale_uv,
                **self._shift_context(table),
            )  # fmt: skip
        self.train_set, self.val_set, self.test_set = sets["train"], sets["val"], sets["test"]
        final = self.split["name"] == "all"  # the final model: no test subjects by design
        if len(self.train_set) == 0 or (len(self.test_set) == 0 and not final):
            raise ConfigError(
                f"fold {self.fold_index} has {len(self.train_set)} training and {len(self.test_set)} "
                f"test windows: check data.classes and the split settings"
            )
        log.info(
            "fold %d: train %d subjects / %d windows, val %d / %d, test %s / %d windows",
            self.fold_index,
            len(self.fold.train),
            len(self.train_set),
            len(self.fold.val),
            len(self.val_set),
            ",".join(self.fold.test),
            len(self.test_set),
        )

    def fitting_rows(self) -> np.ndarray:
        """The rows a closed-form model is fitted to: every non-test window (training + validation subjects), or,
        when the features describe only whole records (``data.features=muap``), one row per such record."""
        rows = np.concatenate([self.train_set.rows, self.val_set.rows])
        if self.features is None or any(part in FEATURE_SETS for part in feature_parts(self.features)):
            return rows
        _, first = np.unique(self.table.columns["record"][rows], return_index=True)
        return rows[np.sort(first)]

    def record_features(self) -> RecordFeatures | None:
        """Where a record feature set (``data.features=muap``) reads the records from; None for window sets."""
        if not describes_records(self.features):
            return None
        entries = selected_records(self.source, self.source_options, self.label_map, self.muscles)
        return RecordFeatures(self.source, self.source_options, entries, self.cache_dir)

    @property
    def predicts_records(self) -> bool:
        """Whether the features describe whole records: predictions are then per record (window level n/a)."""
        return describes_records(self.features)

    def _shift_context(self, table: WindowTable) -> dict[str, Any]:
        """Context samples, each row's next kept window in its record (or -1), and the hop in samples."""
        hop = self.settings.hop * table.sample_rate
        context = int(round(self.train_context_s * table.sample_rate))
        if context > int(hop) or context > table.windows.shape[1]:
            raise ConfigError(
                f"augmentation.shift_s={self.train_context_s} is longer than the hop between windows "
                f"({self.settings.hop} s): shift by at most the hop"
            )
        record, window = table.columns["record"], table.columns["window"]
        following = np.arange(1, len(table) + 1)
        following[-1] = 0
        contiguous = (record[following] == record) & (window[following] == window + 1)
        contiguous[-1] = False
        return {"context": context, "next_row": np.where(contiguous, following, -1), "hop": hop}

    @property
    def sample_rate(self) -> float:
        """Of the windows the networks see (after any resampling)."""
        return float(self.load_table().sample_rate)

    @property
    def feature_names(self) -> list[str] | None:
        """Columns of the feature vectors served as ``x`` (``data.features``), or None when windows are served."""
        return None if self.features is None else feature_names(self.features, self.sample_rate)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def _batches(self, dataset: WindowDataset, shuffle: bool) -> Sampler:
        """The batches of positions one process would read in an epoch."""
        overfitting = self.trainer is not None and self.trainer.overfit_batches > 0  # debug=overfit: same batches
        if self.whole_records:
            return RecordBatches(dataset.records[dataset.rows], self.batch_size, shuffle and not overfitting)
        if overfitting:
            return InOrderBatches(dataset, self.batch_size)
        if shuffle:
            # a training batch of one window cannot pass BatchNorm: drop the last batch only in that case
            drop_last = len(dataset) % self.batch_size == 1
            order = training_sampler(self.table.columns["subject"][dataset.rows], self.weight_by)
            return BatchSampler(order, self.batch_size, drop_last=drop_last)
        return BatchSampler(SequentialSampler(dataset), self.batch_size, drop_last=False)

    def check_processes(self, world: int) -> None:
        """Refuse, before any process starts, a split that leaves a process of a ``world``-process (DDP) run
        without a training or validation batch."""
        for part, dataset, shuffle in (("training", self.train_set, True), ("validation", self.val_set, False)):
            batches = len(self._batches(dataset, shuffle))
            if batches < world:
                raise ConfigError(
                    f"the {part} set's {len(dataset)} windows make {batches} batch(es) of data.batch_size="
                    f"{self.batch_size} for {world} processes: each process needs at least one; lower "
                    f"data.batch_size (it is per process)"
                )

    def _loader(self, dataset: WindowDataset, shuffle: bool) -> DataLoader:
        sampler = self._batches(dataset, shuffle)
        world = self.trainer.world_size if self.trainer is not None else 1
        if world > 1:  # data.batch_size windows per process and step: the global batch is world times that
            sampler = ShardedBatches(sampler, self.trainer.global_rank, world, self.shuffle_seed, equal=shuffle)
        return DataLoader(
            dataset,
            sampler=sampler,
            batch_size=None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)


def _index_of(values: np.ndarray, vocabulary: list[str]) -> np.ndarray:
    lookup = {v: i for i, v in enumerate(vocabulary)}
    return np.array([lookup.get(v, -1) for v in values], dtype=np.int64)


def _make_fold(labels: dict[str, str], fold: int, split: dict[str, Any], strata: dict[str, str] | None) -> Fold:
    settings = dict(split)
    name = settings.pop("name")
    check_split_settings(name, settings)
    for key in ("test_fraction", "val_fraction"):
        settings.pop(key, None)
    return make_fold(labels, fold, name, **settings, strata=strata)


def check_classes(classes: Sequence[str] | None, label_map: dict[str, str] | None) -> list[str] | None:
    """``data.classes`` as a list (None: from the data), refused when it cannot mean anything: fewer than two,
    repeated or empty names, or a ``data.label_map`` that renames a label into a class not chosen."""
    if classes is None:
        chosen = None
    else:
        if isinstance(classes, str):
            raise ConfigError(f"data.classes={classes!r} must be a list of two or more class names, or null")
        chosen = [str(c) for c in classes]
        repeated = sorted({c for c in chosen if chosen.count(c) > 1})
        if repeated:
            raise ConfigError(f"data.classes={chosen} names {', '.join(repeated)} more than once: list each once")
        if len(chosen) < 2 or any(not c.strip() for c in chosen):
            raise ConfigError(f"data.classes={chosen} must name two or more classes (or be null: all of the data's)")
    for old, new in dict(label_map or {}).items():
        if chosen is not None and new not in chosen:
            raise ConfigError(
                f"data.label_map renames {old} to {new!r}, which is not in data.classes={chosen}: add it there, or "
                f"map {old} to one of them"
            )
    return chosen
