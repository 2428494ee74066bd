"""Multiclass metrics (torchmetrics collections) and their readable summaries."""
