"""Trained models used on new recordings: prediction and external evaluation (predict), ONNX / torch.export
(export), attributions (explain). Beside training, not under it: nothing here trains."""
