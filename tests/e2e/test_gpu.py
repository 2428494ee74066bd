"""The GPU paths: trainer=gpu (bf16 mixed precision) and compile=true. Skipped, saying why, without CUDA."""

from __future__ import annotations

import json

import pytest
from test_run_options import emg_train

from conftest import TINY_DATA


@pytest.mark.gpu
@pytest.mark.parametrize("extra", [[], ["compile=true"]], ids=["bf16", "bf16-compiled"])
@pytest.mark.parametrize("model", ["alsnet", "resemgnet", "features"])
def test_gpu_training_in_bf16(model, extra, tmp_path):
    result = emg_train(
        *TINY_DATA,
        "trainer=gpu",
        "trainer.max_epochs=2",
        f"model={model}",
        *extra,
        f"hydra.run.dir={tmp_path}",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 0.0 <= metrics["test/acc"] <= 1.0 and metrics["test_windows"] > 0
