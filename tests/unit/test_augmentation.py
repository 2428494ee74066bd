"""Augmentation: each operation by hand, determinism from the seed, the shift within the record served by the
DataModule, refusals, and that validation and test batches are never touched."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from emg_lightning.augmentation import Augmentation, augment, shift_within_record
from emg_lightning.classifier import EMGClassifier
from emg_lightning.cv.identity import what_matters
from emg_lightning.data.datamodule import EMGDataModule
from emg_lightning.runtime.errors import ConfigError
from emg_lightning.training import train

from conftest import TINY_DATA, compose_train


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def windows(n: int = 64, samples: int = 500) -> torch.Tensor:
    return torch.randn(n, 1, samples, generator=generator(99)) * 40 + 5


def test_scale_stays_within_its_bounds_and_flip_only_inverts():
    x = windows()
    y = torch.zeros(len(x), dtype=torch.long)
    scaled, targets = augment(x, y, 3, Augmentation(scale=1.5), generator())
    ratio = (scaled / x)[:, 0, 0]
    assert torch.allclose((scaled / x), ratio[:, None, None].expand_as(x), rtol=1e-5)  # one factor per window
    assert ratio.min() >= 1 / 1.5 - 1e-6 and ratio.max() <= 1.5 + 1e-6 and ratio.std() > 0.05
    assert torch.equal(targets, torch.nn.functional.one_hot(y, 3).float())
    flipped, _ = augment(x, y, 3, Augmentation(flip_p=0.5), generator())
    same, inverted = (flipped == x).all(dim=-1)[:, 0], (flipped == -x).all(dim=-1)[:, 0]
    assert bool((same | inverted).all()) and 10 < int(inverted.sum()) < 54


def test_noise_is_added_at_the_stated_snr():
    x = windows(32, 4000)
    noisy, _ = augment(x, torch.zeros(32, dtype=torch.long), 2, Augmentation(noise_snr_db=(20.0, 20.0)), generator())
    centred = x - x.mean(dim=-1, keepdim=True)
    snr = 10 * torch.log10(centred.pow(2).mean(dim=-1) / (noisy - x).pow(2).mean(dim=-1))
    assert torch.allclose(snr, torch.full_like(snr, 20.0), atol=0.3)


def test_masks_set_short_stretches_to_the_windows_mean():
    x = windows(16, 1000)
    masked, _ = augment(
        x, torch.zeros(16, dtype=torch.long), 2, Augmentation(mask_count=1, mask_fraction=0.1), generator()
    )
    changed = (masked != x)[:, 0, :]
    assert int(changed.sum(dim=-1).max()) <= 100
    mean = x.mean(dim=-1, keepdim=True).expand_as(x)
    assert torch.allclose(masked[masked != x], mean[masked != x])


def test_mixup_mixes_windows_and_targets_alike():
    x = windows(8, 100)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    mixed, targets = augment(x, y, 3, Augmentation(mixup_alpha=0.2), generator())
    assert torch.allclose(targets.sum(dim=1), torch.ones(8))
    # each mixed window is lam * its own + (1 - lam) * one partner: the target says how much of its own class
    own = targets[torch.arange(8), y]
    assert bool((own >= 0).all()) and not torch.allclose(mixed, x)


def test_the_same_seed_gives_the_same_batch_and_another_seed_another():
    x, y = windows(), torch.zeros(64, dtype=torch.long)
    strong = Augmentation.from_settings(
        {"name": "strong", "scale": 1.5, "flip_p": 0.5, "noise_snr_db": [10, 30], "mask_count": 2,
         "mask_fraction": 0.1, "mixup_alpha": 0.2}
    )  # fmt: skip
    first = augment(x, y, 3, strong, generator(1))
    again = augment(x, y, 3, strong, generator(1))
    other = augment(x, y, 3, strong, generator(2))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])


def test_shift_crops_within_the_room_each_window_has():
    long = torch.arange(3 * 12, dtype=torch.float32).reshape(3, 1, 12)
    room = torch.tensor([0, 2, 4])
    for seed in range(20):
        cropped = shift_within_record(long, room, 8, generator(seed))
        offsets = cropped[:, 0, 0] - long[:, 0, 0]
        assert offsets[0] == 0 and 0 <= offsets[1] <= 2 and 0 <= offsets[2] <= 4
        assert torch.equal(
            cropped[:, 0, :], long[torch.arange(3)[:, None], 0, offsets.long()[:, None] + torch.arange(8)]
        )


def test_settings_that_cannot_mean_anything_are_refused():
    with pytest.raises(ConfigError, match="augmentation.scale=0.5 must be >= 1"):
        Augmentation.from_settings({"name": "x", "scale": 0.5})
    with pytest.raises(ConfigError, match="augmentation.noise_snr_db=\\[30, 10\\]"):
        Augmentation.from_settings({"name": "x", "noise_snr_db": [30, 10]})
    with pytest.raises(ConfigError, match="augmentation has no settings \\['rotate'\\]"):
        Augmentation.from_settings({"name": "x", "rotate": 1})
    with pytest.raises(ConfigError, match="choose one"):
        EMGClassifier(augmentation={"name": "x", "mixup_alpha": 0.2}, label_smoothing={"name": "fixed", "epsilon": 0.1})
    with pytest.raises(ConfigError, match="reads feature vectors: use augmentation=none"):
        EMGClassifier(net={"name": "feature_linear", "in_features": 4}, augmentation={"name": "x", "flip_p": 0.5})


def tiny_datamodule(**kwargs) -> EMGDataModule:
    data = {
        "source": "synthetic",
        "synthetic": {"subjects_per_class": {"normal": 2, "als": 2, "myopathy": 2}, "records_per_subject": [2, 2],
                      "duration_s": 3.0},
        "sample_rate": 2343.75,
        "batch_size": 8,
    }  # fmt: skip
    module = EMGDataModule.from_config(data, **kwargs)
    module.setup()
    return module


def test_training_windows_come_with_the_next_samples_of_their_record_and_only_they(tmp_path, monkeypatch):
    monkeypatch.setenv("EMG_CACHE_DIR", str(tmp_path))
    plain, shifted = (
        tiny_datamodule(cache_dir=str(tmp_path)),
        tiny_datamodule(cache_dir=str(tmp_path), train_context_s=0.25),
    )
    context = int(round(0.25 * 2343.75))
    table = shifted.table
    rows = shifted.train_set.rows[:8]
    batch = shifted.train_set[np.arange(8)]
    assert batch["x"].shape == (8, 1, 2343 + context) and batch["length"].tolist() == [2343] * 8
    scale = 1 / table.adc_gain
    for i, row in enumerate(rows):
        np.testing.assert_allclose(batch["x"][i, 0, :2343].numpy(), table.windows[row] * scale, rtol=1e-6)
        last = row + 1 >= len(table) or table.columns["record"][row + 1] != table.columns["record"][row]
        if last:  # the last window of its record has nothing after it: no room to shift
            assert batch["room"][i] == 0
        else:  # hop = window: the next window starts where this one ends
            assert batch["room"][i] == context
            np.testing.assert_allclose(
                batch["x"][i, 0, 2343:].numpy(), table.windows[row + 1][:context] * scale, rtol=1e-6
            )
    assert int((batch["room"] == 0).sum()) < 8
    for part in ("val_set", "test_set"):  # evaluation windows are served as stored
        evaluation = getattr(shifted, part)[np.arange(4)]
        assert evaluation["x"].shape == (4, 1, 2343) and "room" not in evaluation
        assert torch.equal(evaluation["x"], getattr(plain, part)[np.arange(4)]["x"])


def test_validation_and_test_batches_are_never_augmented():
    model = EMGClassifier(augmentation={"name": "strong", "scale": 1.5, "flip_p": 0.5, "noise_snr_db": [10, 30]})
    batch = {"x": windows(4, 300), "y": torch.tensor([0, 1, 2, 0])}
    for training in (False, True):
        model._trainer = SimpleNamespace(training=training, global_step=0)
        out = model.on_after_batch_transfer(dict(batch), 0)
        assert torch.equal(out["x"], batch["x"]) != training
    model._trainer = None


def test_a_run_with_strong_augmentation_trains_tests_and_says_so(tmp_path):
    try:
        metrics = train(
            compose_train([*TINY_DATA, "trainer.max_epochs=1", "print_config=false", "augmentation=strong"], tmp_path)
        )
    finally:
        GlobalHydra.instance().clear()
    assert 0 <= metrics["test/acc"] <= 1
    assert "augmentation" in (tmp_path / "config.yaml").read_text()
    assert json.loads((tmp_path / "metrics.json").read_text())["test_windows"] > 0
    # a folder written before augmentation existed resumes under augmentation=none
    assert what_matters({"seed": 0, "augmentation": {"name": "none"}}) == what_matters({"seed": 0})
