"""Classical EMG feature baseline: the hand-crafted time-domain and spectral features of the raw window
(``features/basic.py``), then a linear or small MLP head. The features are computed in torch from the same windows
the CNNs see, so the baseline trains through the same LightningModule, folds and metrics, and "raw-signal CNNs beat
hand-crafted features" is measured.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from emg_lightning.features.basic import DEFAULT_BANDS_HZ, emg_features, feature_count
from emg_lightning.models.linear import set_standardisation_buffers

OLD_BATCHNORM_EPS = 1e-5  # BatchNorm1d's default, the standardisation of earlier versions


class EMGFeatureNet(nn.Module):
    """The classical feature baseline: fixed time-domain and spectral features, standardised, then a linear head
    (``hidden=()``, softmax regression) or a small MLP (e.g. ``hidden=(32,)``).

    Input: (batch, 1, samples) float32 in microvolts, one needle channel, at ``sample_rate`` Hz (it sets the
    spectral bands: pass the windows' real rate), any length >= 16 samples.
    Output: logits (batch, num_classes).
    Parameters: 66 with 3 classes at 23,437.5 Hz (21 features x 3 + 3), 60 at 4,687.5 Hz (19 features); none in
    the features themselves.
    Paper: none; the baseline both papers omit (Phinyomark et al. 2012 describe the time-domain features).

    The features are standardised with the mean and standard deviation of every training window's features, fixed
    before the first epoch (``set_standardisation``, which emg-train calls with the fold's training windows: a
    StandardScaler's part), so every epoch, every device and the validation and test windows use the same training
    statistics. Weights saved by earlier versions (a BatchNorm's running averages) load with those averages."""

    def __init__(
        self,
        num_classes: int = 3,
        in_channels: int = 1,
        sample_rate: float = 23437.5,
        bands_hz: Sequence[float] = DEFAULT_BANDS_HZ,
        threshold: float = 0.05,
        hidden: Sequence[int] = (),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if in_channels != 1:
            raise ValueError(f"the feature baseline reads one channel, got in_channels={in_channels}")
        if not sample_rate or sample_rate <= 0:
            raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate!r}")
        self.sample_rate, self.bands_hz, self.threshold = float(sample_rate), tuple(bands_hz), threshold
        width = feature_count(self.sample_rate, self.bands_hz)
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("scale", torch.ones(width))
        layers: list[nn.Module] = []
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*layers)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The fixed features of (batch, 1, samples) windows: (batch, features), nothing to learn."""
        with torch.no_grad():
            return emg_features(x[:, 0].float(), self.sample_rate, self.bands_hz, self.threshold)

    def set_standardisation(self, features: np.ndarray) -> None:
        """Mean and scale of every training window's features (the whole training set, not recent batches)."""
        set_standardisation_buffers(self, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier((self.features(x) - self.mean) / self.scale)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # weights saved by earlier versions standardised with BatchNorm1d(affine=False) as classifier.0, which
        # evaluates (x - running_mean) / sqrt(running_var + eps): the same standardisation, read into mean and scale
        old = f"{prefix}classifier.0.running_mean"
        if old in state_dict and f"{prefix}mean" not in state_dict:
            state_dict[f"{prefix}mean"] = state_dict.pop(old)
            variance = state_dict.pop(f"{prefix}classifier.0.running_var")
            state_dict[f"{prefix}scale"] = torch.sqrt(variance + OLD_BATCHNORM_EPS)
            state_dict.pop(f"{prefix}classifier.0.num_batches_tracked", None)
            for key in [k for k in state_dict if k.startswith(f"{prefix}classifier.")]:
                index, rest = key[len(f"{prefix}classifier.") :].split(".", 1)
                state_dict[f"{prefix}classifier.{int(index) - 1}.{rest}"] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
