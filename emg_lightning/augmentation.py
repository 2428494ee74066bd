"""Training-time augmentation of raw EMG windows (pure torch functions over a batch).

Applied on the fly to training batches only (``EMGClassifier.on_after_batch_transfer``), never to validation or
test batches, with a generator seeded by (training seed, global step): the same seed gives the same augmented
batches, and a resumed run continues the same sequence. In order:

  shift      the window moves later in its record by a random 0..shift_s seconds (the DataModule serves training
             windows with the following shift_s seconds of the same record; a window with no contiguous successor
             stays where it is)
  scale      amplitude times a factor drawn log-uniformly in [1/scale, scale]
  flip       sign inverted with probability flip_p (a needle's polarity is arbitrary)
  noise      white Gaussian noise at an SNR drawn uniformly in noise_snr_db = [low, high] dB of the window's power
  masks      mask_count segments of up to mask_fraction of the window set to the window's mean
  mixup      mixup_alpha > 0: each window mixed with another of the batch, lambda ~ Beta(alpha, alpha); the targets
             mix the same way (Zhang et al. 2018)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from scipy import stats

from emg_lightning.runtime.errors import ConfigError


@dataclass(frozen=True)
class Augmentation:
    name: str = "none"
    shift_s: float = 0.0
    scale: float = 1.0
    flip_p: float = 0.0
    noise_snr_db: tuple[float, float] | None = None
    mask_count: int = 0
    mask_fraction: float = 0.0
    mixup_alpha: float = 0.0

    @classmethod
    def from_settings(cls, settings: dict[str, Any] | None) -> Augmentation:
        """From the ``augmentation`` config group; every value checked, one line naming the key."""
        settings = dict(settings or {"name": "none"})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ConfigError(f"augmentation has no settings {unknown}; known: {sorted(known)}")
        snr = settings.get("noise_snr_db")
        if snr is not None:
            if len(snr) != 2 or not snr[0] <= snr[1]:
                raise ConfigError(f"augmentation.noise_snr_db={list(snr)} must be [low, high] dB with low <= high")
            settings["noise_snr_db"] = (float(snr[0]), float(snr[1]))
        result = cls(**settings)
        checks = [
            ("shift_s", result.shift_s >= 0, "a duration >= 0 (seconds)"),
            ("scale", result.scale >= 1, ">= 1 (factors in [1/scale, scale])"),
            ("flip_p", 0 <= result.flip_p <= 1, "a probability in [0, 1]"),
            ("mask_count", isinstance(result.mask_count, int) and result.mask_count >= 0, "a count >= 0"),
            ("mask_fraction", 0 <= result.mask_fraction < 1, "a fraction in [0, 1)"),
            ("mixup_alpha", result.mixup_alpha >= 0, ">= 0 (0: no mixup)"),
        ]
        for key, ok, what in checks:
            if not ok:
                raise ConfigError(f"augmentation.{key}={getattr(result, key)!r} must be {what}")
        return result

    @property
    def active(self) -> bool:
        return any(
            (self.shift_s > 0, self.scale > 1, self.flip_p > 0, self.noise_snr_db is not None,
             self.mask_count > 0 and self.mask_fraction > 0, self.mixup_alpha > 0)
        )  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        if values["noise_snr_db"] is not None:
            values["noise_snr_db"] = list(values["noise_snr_db"])
        return values


def shift_within_record(x: torch.Tensor, room: torch.Tensor, length: int, generator: torch.Generator) -> torch.Tensor:
    """Crop ``length`` samples from windows served with extra samples after them, ``room[i]`` of which belong to
    the same record: offsets uniform in 0..room[i]."""
    offsets = (torch.rand(len(x), generator=generator, device=x.device) * (room + 1).to(x.dtype)).long()
    offsets = torch.minimum(offsets, room)
    index = offsets[:, None] + torch.arange(length, device=x.device)[None, :]
    return torch.gather(x[:, 0, :], 1, index)[:, None, :]


def augment(
    x: torch.Tensor, y: torch.Tensor, num_classes: int, settings: Augmentation, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented windows (batch, 1, samples) and their targets (batch, classes): one-hot unless mixup mixed them."""
    n = len(x)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device=x.device)

    if settings.scale > 1:
        log_scale = math.log(settings.scale)
        x = x * torch.exp((rand(n, 1, 1) * 2 - 1) * log_scale)
    if settings.flip_p > 0:
        x = torch.where(rand(n, 1, 1) < settings.flip_p, -x, x)
    if settings.noise_snr_db is not None:
        low, high = settings.noise_snr_db
        snr_db = low + (high - low) * rand(n, 1, 1)
        centred = x - x.mean(dim=-1, keepdim=True)
        power = centred.pow(2).mean(dim=-1, keepdim=True)
        noise = torch.randn(x.shape, generator=generator, device=x.device)
        x = x + noise * torch.sqrt(power / 10 ** (snr_db / 10))
    if settings.mask_count > 0 and settings.mask_fraction > 0:
        samples = x.shape[-1]
        positions = torch.arange(samples, device=x.device)[None, :]
        mean = x.mean(dim=-1, keepdim=True)
        for _ in range(settings.mask_count):
            width = (rand(n, 1) * settings.mask_fraction * samples).long()
            start = (rand(n, 1) * (samples - width + 1)).long()
            inside = ((positions >= start) & (positions < start + width))[:, None, :]
            x = torch.where(inside, mean, x)
    targets = torch.nn.functional.one_hot(y, num_classes).to(x.dtype)
    if settings.mixup_alpha > 0:
        # Beta(alpha, alpha) through its inverse CDF of the generator's uniforms: the draws follow the seed
        alpha = settings.mixup_alpha
        lam = torch.from_numpy(stats.beta.ppf(rand(n).cpu().numpy(), alpha, alpha)).to(x)
        partner = torch.randperm(n, generator=generator, device="cpu").to(x.device)
        x = lam[:, None, None] * x + (1 - lam[:, None, None]) * x[partner]
        targets = lam[:, None] * targets + (1 - lam[:, None]) * targets[partner]
    return x, targets
