"""emg-export: every registered network round-trips through onnxruntime and torch.export within the stated
tolerance, with its input contract in the files; a CV folder exports as its folds' mean."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from emg_lightning.cli.export import main as export_main
from emg_lightning.inference.export import TOLERANCE, export_model
from emg_lightning.inference.predict import load_model
from emg_lightning.models import MODELS, input_kind, pools_records
from emg_lightning.runtime.errors import ConfigError

from conftest import CLASSES, N_FEATURES, RATE, SAMPLES, run_main, untrained_run


def inputs(name, batch=5):
    if input_kind(name) == "features":
        return torch.randn(batch, N_FEATURES)
    return torch.randn(batch, 1, SAMPLES) * 80


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(n for n in MODELS if not pools_records(n)))
def test_every_network_round_trips_through_onnxruntime_and_torch_export(name, tmp_path):
    model = load_model(untrained_run(tmp_path / "run", name))
    report = export_model(model, tmp_path / "export")
    assert all(check["max_abs_difference"] <= TOLERANCE for check in report["files"].values())
    x = inputs(name)
    with torch.no_grad():
        eager = torch.softmax(model.classifiers[0](x), dim=-1).numpy()
    session = onnxruntime.InferenceSession(str(tmp_path / "export" / "model.onnx"))
    np.testing.assert_allclose(session.run(None, {"x": x.numpy()})[0], eager, atol=TOLERANCE)
    program = torch.export.load(tmp_path / "export" / "model.pt2").module()
    np.testing.assert_allclose(program(x).detach().numpy(), eager, atol=TOLERANCE)
    metadata = {p.key: json.loads(p.value) for p in onnx.load(tmp_path / "export" / "model.onnx").metadata_props}
    assert metadata["classes"] == CLASSES and metadata["sample_rate_hz"] == RATE
    assert metadata["input_unit"] == "uV" and metadata["window_samples"] == SAMPLES


def test_a_record_level_model_is_refused_rather_than_exported_without_its_pooling(tmp_path):
    model = load_model(untrained_run(tmp_path / "run", "feature_attention_mil"))
    with pytest.raises(ConfigError, match="record-level model"):
        export_model(model, tmp_path / "export")
    assert not (tmp_path / "export").exists()


def test_a_cv_folder_exports_the_mean_of_its_folds_with_zscoring_inside(tmp_path):
    for fold in (0, 1):
        untrained_run(tmp_path / "cv" / "seed_0" / f"fold_{fold:02d}", "alsnet", seed=fold, normalization="zscore")
    model = load_model(tmp_path / "cv")
    export_model(model, tmp_path / "export", formats=("onnx",))
    x = inputs("alsnet") + 500.0  # an offset z-scoring removes
    z = (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True, unbiased=False) + 1e-6)
    with torch.no_grad():
        expected = np.mean([torch.softmax(c(z), -1).numpy() for c in model.classifiers], axis=0)
    session = onnxruntime.InferenceSession(str(tmp_path / "export" / "model.onnx"))
    np.testing.assert_allclose(session.run(None, {"x": x.numpy()})[0], expected, atol=TOLERANCE)
    with pytest.raises(ConfigError, match="--formats tflite"):
        export_model(model, tmp_path / "export", formats=("tflite",))


def test_emg_export_command(tmp_path, capsys):
    run = untrained_run(tmp_path / "run", "feature_linear")
    code, out, err = run_main(export_main, [run, "--formats", "onnx"], capsys)
    assert code == 0, err[-3000:]
    assert "input: feature vectors (batch, n_features) in uV at 2343.75 Hz" in out
    assert json.loads((run / "export" / "export.json").read_text())["contract"]["features"] == "qemg"
    code, _, err = run_main(export_main, [run, "--formats", "tflite"], capsys)
    assert code == 2 and "--formats tflite: choose from onnx, pt2" in err
