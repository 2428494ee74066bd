"""A record-level (multiple-instance) model: the windows of one record are a bag with one label, the record's.

Attention-based MIL (Ilse, Tomczak & Welling, ICML 2018: gated attention over instance embeddings), with one
change: the attention weights pool the windows' class probabilities, not their embeddings. A record's probability
is then sum_i a_i p_i, which keeps a prediction per window and lets every report recompute the record's figure
from predictions.csv (its ``weight`` column holds a_i)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from emg_lightning.models.linear import set_standardisation_buffers


class FeatureAttentionMIL(nn.Module):
    """Per-window feature vectors -> per-window class logits and attention scores; the classifier pools them per
    record (``record_weights``, ``pool_records``) and trains on record labels.

    Input: (windows, in_features) float32 feature vectors (``data.features``, e.g. qEMG), the windows of whole
    records (the DataModule serves whole records to a model with ``pools_records``).
    Output: ``forward``: window logits (windows, num_classes); ``forward_with_attention``: those and one attention
    score per window (windows,), softmaxed within each record by the caller.
    Parameters: with 88 features and hidden 32: 88*32+32 (encoder) + 2*(32*32+32) (gated attention) + 33 + 99 = 5,109,
    plus the standardisation's mean and scale (buffers, set from the training windows before training).
    Paper: Ilse et al. 2018 for gated attention; the probability pooling and the feature input are this project's."""

    input_kind = "features"  # what the DataModule serves as x: feature vectors (data.features), not windows
    pools_records = True  # trained and evaluated per record: batches hold whole records

    def __init__(self, num_classes: int = 3, in_features: int = 1, hidden: int = 32, dropout: float = 0.25) -> None:
        super().__init__()
        if not isinstance(in_features, int) or in_features < 1:
            raise ValueError(f"in_features must be a positive integer, got {in_features!r}")
        if not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"model.net.hidden must be a positive integer, got {hidden!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"model.net.dropout must be in [0, 1), got {dropout!r}")
        self.register_buffer("mean", torch.zeros(in_features))
        self.register_buffer("scale", torch.ones(in_features))
        self.encoder = nn.Sequential(nn.Linear(in_features, hidden), nn.GELU(), nn.Dropout(dropout))
        self.classify = nn.Linear(hidden, num_classes)
        self.attention_tanh = nn.Linear(hidden, hidden)
        self.attention_gate = nn.Linear(hidden, hidden)
        self.attention_score = nn.Linear(hidden, 1)

    def set_standardisation(self, features: np.ndarray) -> None:
        """Mean and scale of every training window's features (the whole training set, not recent batches)."""
        set_standardisation_buffers(self, features)

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 2 or x.shape[1] != self.mean.numel():
            raise ValueError(
                f"FeatureAttentionMIL expects (windows, {self.mean.numel()}) feature vectors, got {tuple(x.shape)}: "
                f"set data.features to the feature set it was built for"
            )
        h = self.encoder((x - self.mean) / self.scale)
        gated = torch.tanh(self.attention_tanh(h)) * torch.sigmoid(self.attention_gate(h))
        return self.classify(h), self.attention_score(gated).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_attention(x)[0]


def record_weights(scores: torch.Tensor, record: torch.Tensor) -> torch.Tensor:
    """Softmax of the attention ``scores`` within each record: ``record`` gives each window's record as 0..R-1;
    each record's weights sum to 1."""
    count = int(record.max()) + 1 if record.numel() else 0
    top = torch.full((count,), -torch.inf, dtype=scores.dtype, device=scores.device)
    top = top.scatter_reduce(0, record, scores, reduce="amax")
    exp = torch.exp(scores - top[record])
    total = torch.zeros(count, dtype=scores.dtype, device=scores.device).index_add(0, record, exp)
    return exp / total[record]


def pool_records(probabilities: torch.Tensor, weights: torch.Tensor, record: torch.Tensor) -> torch.Tensor:
    """(records, classes): each record's weighted sum of its windows' probabilities (weights summing to 1 per
    record, as ``record_weights`` gives)."""
    count = int(record.max()) + 1 if record.numel() else 0
    pooled = torch.zeros(count, probabilities.shape[1], dtype=probabilities.dtype, device=probabilities.device)
    return pooled.index_add(0, record, probabilities * weights[:, None])
