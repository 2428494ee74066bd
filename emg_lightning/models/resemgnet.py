"""ResEMGNet (Rahman et al., arXiv 2309.10756): a lightweight residual 1-D CNN on raw EMG.

Published: residual, lightweight, raw signal, three classes. Everything else here is this project's
reconstruction and lives in the arguments: stem, stage widths, kernels, strides, dilations, head.
The default (94,579 parameters with 3 classes) downsamples early so that it trains in minutes on a CPU.
The "ALSNet lineage" variant (conf/model/resemgnet_alsnet_lineage.yaml) has no stem and wraps ALSNet's three dilated
stages (kernels 11/9/7, dilations 1/2/3, 32/64/128 channels, stride 1) in one-convolution residual blocks with 1x1
projections: 87,683 parameters with 3 classes, ALSNet's cost per window.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ResidualBlock1d(nn.Module):
    """(conv-BN-ReLU-dropout) x (convs - 1), conv-BN, plus a shortcut (1x1 conv + BN when the shape changes), then
    ReLU. ``convs=2`` is the classic basic block; ``convs=1`` wraps a single convolution (the ALSNet lineage)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        dilation: int,
        dropout: float,
        convs: int = 2,
    ) -> None:
        super().__init__()
        if convs < 1:
            raise ValueError(f"convs_per_block must be >= 1, got {convs}")
        padding = dilation * (kernel_size - 1) // 2
        layers: list[nn.Module] = []
        for i in range(convs):
            layers += [
                nn.Conv1d(
                    in_channels if i == 0 else out_channels,
                    out_channels,
                    kernel_size,
                    stride=stride if i == 0 else 1,
                    padding=padding,
                    dilation=dilation,
                    bias=False,
                ),
                nn.BatchNorm1d(out_channels),
            ]
            if i < convs - 1:
                layers += [nn.ReLU(inplace=True), nn.Dropout(dropout)]
        self.body = nn.Sequential(*layers)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv1d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm1d(out_channels)
            )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        body = self.body(x)
        shortcut = self.shortcut(x)
        length = min(body.shape[-1], shortcut.shape[-1])  # even kernels can differ by one sample
        return self.act(body[..., :length] + shortcut[..., :length])


class ResEMGNet(nn.Module):
    """ResEMGNet: a strided stem, residual 1-D stages, global average pooling and a linear head.

    Input: (batch, 1, samples) float32 in microvolts (or z-scored, ``data.normalization``), one needle channel, any
    length the strides leave at least one sample of; defaults tuned for 1-s windows at 2,343.75-23,437.5 Hz.
    Output: logits (batch, num_classes).
    Parameters: 94,579 with 3 classes and the defaults (94,450 with 2); the ALSNet-lineage variant 87,683.
    Paper: Rahman et al., "ResEMGNet", arXiv 2309.10756 -- residual, lightweight, raw signal, three classes are
    published; the layer settings are this project's reconstruction (shared/docs/papers.md).
    """

    def __init__(
        self,
        num_classes: int = 3,
        in_channels: int = 1,
        stem_channels: int = 16,
        stem_kernel: int = 11,
        stem_stride: int = 2,
        widths: Sequence[int] = (16, 32, 64, 64),
        kernels: Sequence[int] = (7, 7, 5, 5),
        strides: Sequence[int] = (2, 2, 2, 2),
        dilations: Sequence[int] = (1, 1, 2, 2),
        dropout: float = 0.1,
        pooling: str = "avgmax",
        convs_per_block: int = 2,
        width_multiplier: float = 1.0,
    ) -> None:
        super().__init__()
        n = len(widths)
        if not (len(kernels) == len(strides) == len(dilations) == n) or n == 0:
            raise ValueError(
                f"widths, kernels, strides and dilations need the same non-zero length, got "
                f"{len(widths)}, {len(kernels)}, {len(strides)}, {len(dilations)}"
            )
        if pooling not in ("avg", "max", "avgmax"):
            raise ValueError(f"pooling must be avg, max or avgmax, got {pooling!r}")
        self.num_classes, self.pooling = num_classes, pooling
        if width_multiplier <= 0:
            raise ValueError(f"width_multiplier must be > 0, got {width_multiplier}")
        # one knob for "model width" (hyperparameter searches): every channel count scaled, at least one channel
        stem_channels = max(1, round(stem_channels * width_multiplier)) if stem_channels > 0 else 0
        widths = [max(1, round(w * width_multiplier)) for w in widths]
        self.stem: nn.Module = nn.Identity()  # stem_channels 0: the blocks read the raw signal
        if stem_channels > 0:
            self.stem = nn.Sequential(
                nn.Conv1d(
                    in_channels, stem_channels, stem_kernel, stride=stem_stride, padding=stem_kernel // 2, bias=False
                ),
                nn.BatchNorm1d(stem_channels),
                nn.ReLU(inplace=True),
            )
        blocks, channels = [], stem_channels if stem_channels > 0 else in_channels
        for width, kernel, stride, dilation in zip(widths, kernels, strides, dilations):
            blocks.append(ResidualBlock1d(channels, width, kernel, stride, dilation, dropout, convs_per_block))
            channels = width
        self.blocks = nn.Sequential(*blocks)
        pooled = 2 * channels if pooling == "avgmax" else channels
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(pooled, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.stem(x))
        pooled = {
            "avg": lambda: h.mean(-1),
            "max": lambda: h.amax(-1),
            "avgmax": lambda: torch.cat([h.mean(-1), h.amax(-1)], dim=1),
        }[self.pooling]()
        return self.head(pooled)
