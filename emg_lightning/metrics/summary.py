"""Readable console summaries of a run's metrics."""

from __future__ import annotations

import math


def format_metrics(results: dict[str, float]) -> str:
    width = max(len(k) for k in results)
    lines = []
    for key, value in results.items():
        shown = "n/a (class absent)" if isinstance(value, float) and math.isnan(value) else f"{value:.4f}"
        lines.append(f"  {key:<{width}}  {shown}")
    return "\n".join(lines)


def format_confusion(confusion: list[list[int]], class_names: list[str]) -> str:
    width = max(8, *(len(c) + 2 for c in class_names))
    header = " " * (width + 9) + "".join(f"{c:>{width}}" for c in class_names)
    rows = [
        f"  true {name:<{width}}  " + "".join(f"{v:>{width}}" for v in row) for name, row in zip(class_names, confusion)
    ]
    return "\n".join([header + "   (columns: predicted)"] + rows)
