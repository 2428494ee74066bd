"""Plain ``nn.Module`` networks. They know nothing of data, Lightning or Hydra."""

from __future__ import annotations

from typing import Any

from torch import nn

from emg_lightning.models.alsnet import ALSNet
from emg_lightning.models.features import EMGFeatureNet
from emg_lightning.models.linear import FeatureLinear
from emg_lightning.models.mil import FeatureAttentionMIL
from emg_lightning.models.resemgnet import ResEMGNet

# Each takes raw windows (batch, 1, samples) unless its class says input_kind = "features" (feature vectors).
MODELS: dict[str, type[nn.Module]] = {
    "alsnet": ALSNet,
    "resemgnet": ResEMGNet,
    "features": EMGFeatureNet,
    "feature_linear": FeatureLinear,
    "feature_attention_mil": FeatureAttentionMIL,
}


def input_kind(name: str) -> str:
    """ "window" or "features": what network ``name`` reads."""
    return getattr(MODELS[name], "input_kind", "window")


def pools_records(name: str) -> bool:
    """Whether network ``name`` predicts records (attention over a record's windows, trained on record labels)."""
    return getattr(MODELS[name], "pools_records", False)


def closed_form(name: str) -> bool:
    """Whether network ``name`` is fitted to its optimum in one step (no optimizer, epochs or label smoothing)."""
    return getattr(MODELS[name], "closed_form", False)


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Network by registry name with its keyword arguments (all primitives, as saved in checkpoints)."""
    if name not in MODELS:
        raise KeyError(f"model {name!r} is unknown; available: {', '.join(sorted(MODELS))}")
    return MODELS[name](**kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = [
    "ALSNet", "EMGFeatureNet", "FeatureAttentionMIL", "FeatureLinear", "ResEMGNet", "MODELS", "build_model",
    "closed_form", "count_parameters", "input_kind", "pools_records",
]  # fmt: skip
