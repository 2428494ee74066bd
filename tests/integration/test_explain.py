"""emg-explain: attributions with the model-randomisation sanity check, its refusals, and the command's files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from emg_lightning.cli.explain import main as explain_main
from emg_lightning.inference.explain import attributions, explain_windows, rank_correlation, reinitialised
from emg_lightning.inference.predict import load_model
from emg_lightning.runtime.errors import ConfigError

from conftest import run_main, untrained_run, write_wfdb


class FirstHalfDetector(nn.Module):
    """Probability of class 1 rises with the energy of the window's first half; the second half is ignored."""

    def forward(self, x):
        energy = x[..., : x.shape[-1] // 2].pow(2).mean(dim=(-1, -2)) / 1000.0
        return torch.softmax(torch.stack([-energy, energy], dim=-1), dim=-1)


def test_attributions_land_where_the_model_looks():
    windows = np.random.default_rng(0).normal(0, 30, (3, 400)).astype(np.float32)
    result = attributions(FirstHalfDetector(), windows, np.ones(3, dtype=int), steps=16)
    for method in ("integrated_gradients", "saliency"):
        assert np.abs(result[method][:, 200:]).max() == 0  # no attribution where the model never looks
        assert np.abs(result[method][:, :200]).sum() > 0
    # integrated gradients' completeness: they sum to p(x) - p(baseline) for each window
    with torch.no_grad():
        p = FirstHalfDetector()(torch.from_numpy(windows[:, None, :]))[:, 1].numpy()
    np.testing.assert_allclose(result["integrated_gradients"].sum(axis=1), p - 0.5, rtol=0.05, atol=1e-3)


def test_rank_correlation_and_reinitialisation():
    a = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0]])
    assert rank_correlation(a, -a) == pytest.approx(0.5)  # |.|: identical ranks (1), and a constant row (0)
    layer = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    layer[1].running_mean.fill_(3.0)
    clone = reinitialised(layer)
    assert not torch.equal(clone[0].weight, layer[0].weight) and float(clone[1].running_mean.abs().max()) == 0


def test_the_sanity_check_runs_and_feature_models_are_refused(tmp_path):
    model = load_model(untrained_run(tmp_path / "run", "alsnet"))
    windows = np.random.default_rng(1).normal(0, 50, (2, 2343)).astype(np.float32)
    result = explain_windows(model, windows, target="myopathy")
    assert result["targets"].tolist() == [2, 2] and result["probabilities"].shape == (2, 3)
    assert set(result["sanity"]["rank_correlation"]) == {"integrated_gradients", "saliency"}
    # its purpose: a randomised network's attributions differ from the model's (a method that ignored the weights,
    # e.g. one returning the input itself, would rank them identically and score 1)
    assert all(r < 0.9 for r in result["sanity"]["rank_correlation"].values())
    with pytest.raises(ConfigError, match="--target 'tumour' is not one of"):
        explain_windows(model, windows, target="tumour")
    features = load_model(untrained_run(tmp_path / "features", "feature_linear"))
    with pytest.raises(ConfigError, match="feature vectors, not the raw signal"):
        explain_windows(features, windows)


def test_emg_explain_command(tmp_path, capsys):
    run = untrained_run(tmp_path / "run", "resemgnet")
    write_wfdb(tmp_path, "rec", fs=4687.5, seconds=3.5)  # at twice the model's rate: resampled like emg-predict
    out = tmp_path / "why"
    command = [run, tmp_path / "rec.hea", "--out", out]
    code, stdout, err = run_main(explain_main, [*command, "--windows", "0,2"], capsys)
    assert code == 0, err[-3000:]
    assert "window 2:" in stdout and "sanity check (integrated_gradients)" in stdout
    for name in ("explanation.png", "sanity_check.png", "explanation.json"):
        assert (out / name).is_file()
    saved = json.loads((out / "explanation.json").read_text())
    assert saved["windows"] == [0, 2] and len(saved["probabilities"]["als"]) == 2
    code, _, err = run_main(explain_main, [*command, "--windows", "7"], capsys)
    assert code == 2 and "windows [7] do not exist" in err
