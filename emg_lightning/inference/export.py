"""A trained model as files other programs run (the library behind emg-export): ONNX (torch's exporter, checked
with onnxruntime) and a ``torch.export`` program, each carrying its input contract.

The exported graph maps windows in microvolts (batch, 1, window_samples) -- or feature vectors (batch, n_features)
for a feature model -- to class probabilities (batch, classes), the class order in the metadata. Per-window
z-scoring, when the model was trained with it, is inside the graph; resampling, windowing and feature extraction
are not (emg-predict does them): the metadata says what the input must be.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emg_lightning.inference.predict import ProbabilityGraph, TrainedModel
from emg_lightning.runtime.errors import ConfigError, DataError
from emg_lightning.runtime.files import user_umask

FORMATS = ("onnx", "pt2")
TOLERANCE = 1e-4  # max |exported - eager| of a probability
MAX_BATCH = 4096


def contract(model: TrainedModel, run_info: dict) -> dict:
    """The preprocessing contract stored with every exported file."""
    features = run_info.get("feature_names")
    return {
        "input": "feature vectors (batch, n_features)" if model.features else "windows (batch, 1, window_samples)",
        "input_unit": "uV",
        "sample_rate_hz": model.sample_rate,
        "window_s": model.windows.window_s,
        "window_samples": model.window_samples,
        "normalization_inside_graph": "zscore per window" if model.normalization == "zscore" else "none",
        "features": model.features,
        "feature_names": features,
        "output": "class probabilities (batch, classes)",
        "classes": model.classes,
        "source": [str(r.resolve()) for r in model.runs],
        "kind": model.kind,
    }


def example_input(model: TrainedModel, run_info: dict, batch: int = 8, seed: int = 0) -> torch.Tensor:
    """Windows of noise at an EMG-like scale (or feature vectors) to trace and to check the export with."""
    generator = torch.Generator().manual_seed(seed)
    if model.features:
        return torch.randn(batch, len(run_info["feature_names"]), generator=generator)
    return torch.randn(batch, 1, model.window_samples, generator=generator) * 50.0


def export_model(model: TrainedModel, out_dir: Path, formats: tuple[str, ...] = FORMATS) -> dict:
    """Write ``model.onnx`` / ``model.pt2`` and ``export.json`` into ``out_dir``; each export is run on the same
    inputs as the eager model and refused when a probability differs by more than ``TOLERANCE``."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise ConfigError(f"--formats {','.join(formats)}: choose from {', '.join(FORMATS)}")
    if model.pools_records:
        raise ConfigError(
            f"{model.runs[0]} is a record-level model (attention over a record's windows): its record probability "
            f"is not one graph of a window batch, and exporting its window probabilities alone would give other "
            f"record figures than emg-predict; use emg-predict"
        )
    run_info = json.loads((model.runs[0] / "model_input.json").read_text())
    graph = ProbabilityGraph(model).eval()
    metadata = contract(model, run_info)
    trace = example_input(model, run_info, batch=4)
    check = example_input(model, run_info, batch=9, seed=1)  # another batch size: the batch axis is dynamic
    with torch.no_grad():
        expected = graph(check).numpy()
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed": nothing to do with us
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {"contract": metadata, "tolerance": TOLERANCE, "files": {}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(graph, (trace,), dynamic_shapes={"x": {0: batch}})
        if "pt2" in formats:
            path = out_dir / "model.pt2"
            _atomically(
                path, lambda p: torch.export.save(program, p, extra_files={"contract.json": json.dumps(metadata)})
            )
            reloaded = torch.export.load(path).module()
            with torch.no_grad():
                report["files"]["model.pt2"] = _difference(reloaded(check).numpy(), expected, path)
        if "onnx" in formats:
            path = out_dir / "model.onnx"
            _atomically(path, lambda p: _save_onnx(graph, trace, batch, metadata, p))
            report["files"]["model.onnx"] = _difference(_run_onnx(path, check.numpy()), expected, path)
    _atomically(out_dir / "export.json", lambda p: Path(p).write_text(json.dumps(report, indent=1) + "\n"))
    return report


def _save_onnx(graph: nn.Module, trace: torch.Tensor, batch, metadata: dict, path: str) -> None:
    try:
        import onnx
    except ImportError as exc:
        raise ConfigError("ONNX export needs onnx, onnxruntime and onnxscript: pip install -e '.[export]'") from exc
    exported = torch.onnx.export(
        graph, (trace,), dynamo=True, dynamic_shapes={"x": {0: batch}}, input_names=["x"], output_names=["p"],
        verbose=False,
    )  # fmt: skip
    exported.save(path)
    proto = onnx.load(path)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.save(proto, path)


def _run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    try:
        import onnxruntime
    except ImportError as exc:
        raise ConfigError("checking the ONNX file needs onnxruntime: pip install -e '.[export]'") from exc
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x.astype(np.float32)})[0]


def _difference(actual: np.ndarray, expected: np.ndarray, path: Path) -> dict:
    difference = float(np.abs(actual - expected).max())
    if not difference <= TOLERANCE:
        path.unlink(missing_ok=True)
        raise DataError(
            f"{path.name}: its probabilities differ from the trained model's by {difference:.2e} (> {TOLERANCE:g}) on "
            f"the same windows: not written"
        )
    return {"max_abs_difference": difference, "checked_windows": int(len(expected))}


def _atomically(path: Path, write) -> None:
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    try:
        write(staging)
        os.chmod(staging, 0o666 & ~user_umask())
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
