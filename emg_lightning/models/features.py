"""Classical EMG feature baseline: the hand-crafted time-domain and spectral features of the raw window
(``features/basic.py``), then a linear or small MLP head. The features are computed in torch from the same windows
the CNNs see, so the baseline trains through the same LightningModule, folds and metrics, and "raw-signal CNNs beat
hand-crafted features" is measured.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from emg_lightning.features.basic import DEFAULT_BANDS_HZ, emg_features, feature_count


class EMGFeatureNet(nn.Module):
    """The classical feature baseline: fixed time-domain and spectral features, standardised, then a linear head
    (``hidden=()``, softmax regression) or a small MLP (e.g. ``hidden=(32,)``).

    Input: (batch, 1, samples) float32 in microvolts, one needle channel, at ``sample_rate`` Hz (it sets the
    spectral bands: pass the windows' real rate), any length >= 16 samples.
    Output: logits (batch, num_classes).
    Parameters: 66 with 3 classes at 23,437.5 Hz (21 features x 3 + 3), 60 at 4,687.5 Hz (19 features); none in
    the features themselves.
    Paper: none; the baseline both papers omit (Phinyomark et al. 2012 describe the time-domain features).

    The features are standardised by a BatchNorm without affine weights: its running statistics play the part of
    the StandardScaler fitted on the training windows."""

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
        layers: list[nn.Module] = [nn.BatchNorm1d(width, affine=False)]
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # fixed features: nothing to learn before the standardisation
            features = emg_features(x[:, 0].float(), self.sample_rate, self.bands_hz, self.threshold)
        return self.classifier(features)
