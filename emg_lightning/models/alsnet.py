"""ALSNet (Hassan et al., ICASSP 2022): a dilated 1-D CNN on raw one-second EMG segments.

Layer stack, order (conv -> ReLU -> BatchNorm), Keras BatchNorm defaults and initialisation follow the paper's
published Keras model exactly; with the binary head (one sigmoid output) it has 85,249 trainable parameters.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# Keras BatchNormalization defaults: epsilon 1e-3, momentum 0.99 (= PyTorch momentum 0.01).
_BN = dict(eps=1e-3, momentum=0.01)
# The standard deviation of a standard normal truncated to [-2, 2] (Keras' VarianceScaling divides by it)
TRUNCATED_STD_AT_2 = 0.87962566103423978


class ALSNet(nn.Module):
    """ALSNet: three dilated convolution stages (conv -> ReLU -> BatchNorm), global average pooling, dense head.

    Input: (batch, 1, samples) float32 in microvolts, one needle channel, any length >= 45 samples; the paper
    used 1-s windows at 23,437.5 Hz (23,437 samples), unnormalised.
    Output: logits (batch, 1) for ``num_classes == 2`` (the paper's sigmoid head: P(ALS) = sigmoid(logit)), else
    (batch, num_classes) for a softmax.
    Parameters: 85,249 with 2 classes (the paper's count), 85,379 with 3.
    Paper: Hassan et al., "ALSNet", ICASSP 2022 (architecture exact; see shared/docs/papers.md).
    """

    def __init__(self, num_classes: int = 3, in_channels: int = 1) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.num_classes = num_classes
        self.features = nn.Sequential(
            nn.Conv1d(in_channels, 32, kernel_size=11, dilation=1),
            nn.ReLU(),
            nn.BatchNorm1d(32, **_BN),
            nn.Conv1d(32, 64, kernel_size=9, dilation=2),
            nn.ReLU(),
            nn.BatchNorm1d(64, **_BN),
            nn.Conv1d(64, 128, kernel_size=7, dilation=3),
            nn.ReLU(),
            nn.BatchNorm1d(128, **_BN),
        )
        self.dense = nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.BatchNorm1d(64, **_BN))
        self.head = nn.Linear(64, 1 if num_classes == 2 else num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv1d):  # Keras he_normal: truncated normal whose own std is sqrt(2 / fan_in)
                fan_in = module.in_channels * module.kernel_size[0]
                # cutting a normal at +-2 of its std leaves 0.8796 of that std: Keras widens it by as much
                std = math.sqrt(2.0 / fan_in) / TRUNCATED_STD_AT_2
                nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):  # Keras glorot_uniform
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Global max pool written as amax: AdaptiveMaxPool1d has no deterministic CUDA backward.
        return self.head(self.dense(self.features(x).amax(dim=-1)))
