"""emg-bench's machinery on a tiny data set: every figure present and sane (speed itself is not asserted)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from emg_lightning.benchmarks.training import format_report, run_benchmark

from conftest import REPO

TINY_SOURCE = {
    "source": "synthetic",
    "synthetic": {
        "subjects_per_class": {"normal": 2, "als": 2, "myopathy": 2},
        "records_per_subject": [2, 2],
        "duration_s": 3.0,
    },
}


@pytest.mark.slow
def test_benchmark_reports_every_figure_for_each_model(tmp_path):
    report = run_benchmark(
        TINY_SOURCE,
        ["features", "resemgnet"],
        ["native", "cpu"],
        repeats=2,
        target_s=0.2,
        cache=str(tmp_path),
        batch_size=4,
    )
    assert list(report["data"]) == ["23437.5 Hz", "2343.75 Hz"]  # each rate's cache timed once
    for cache in report["data"].values():
        assert cache["windows"] == 36 and cache["cold_build_s"] > 0 and cache["warm_load_and_setup_s"] >= 0
    assert report["data"]["2343.75 Hz"]["window_samples"] == 2343
    # features_loso is the baseline's CPU configuration: no separate "cpu" row
    assert [(r["model"], r["rate"]) for r in report["models"]] == [
        ("features", "native"),
        ("resemgnet", "native"),
        ("resemgnet", "cpu"),
    ]
    for row in report["models"]:
        assert row["batch_size"] == 4 and row["steps"] >= 3 and len(row["ratios"]) == 2
        for key in (
            "framework_windows_per_s",
            "plain_windows_per_s",
            "loader_windows_per_s",
            "latency_ms_batch1",
            "latency_ms_batched",
            "peak_rss_mb",
            "epoch_s_estimate",
        ):
            assert row[key] is not None, key
            assert math.isfinite(row[key]) and row[key] > 0, key
        # the ratio is rounded from unrounded throughputs, the throughputs to 2 decimals: allow both roundings
        framework, plain = row["framework_windows_per_s"], row["plain_windows_per_s"]
        rounding = 5e-4 + (framework / plain) * (0.005 / framework + 0.005 / plain)
        assert abs(row["framework_to_plain"] - framework / plain) <= rounding + 1e-9
        # every fit's steps pooled: the overall throughput lies between the fits'
        for side in ("framework", "plain"):
            runs = row[f"{side}_runs"]
            assert len(runs) == 2 and min(runs) - 0.01 <= row[f"{side}_windows_per_s"] <= max(runs) + 0.01
        for ratio, f, p in zip(row["ratios"], row["framework_runs"], row["plain_runs"], strict=True):
            assert abs(ratio - f / p) <= 5e-4 + (f / p) * (0.005 / f + 0.005 / p) + 1e-9
        assert 0 < row["median_step_ratio"] < 10 and row["page_faults_per_step_pair"] >= 0
        assert row["loader_to_training"] == pytest.approx(
            row["loader_windows_per_s"] / row["framework_windows_per_s"], rel=0.01
        )
    report.update(date="2026-11-23", machine="test", source="tiny", malloc="system allocator (malloc=system)")
    table = format_report(report)
    assert "malloc: system allocator" in table and "framework w/s" in table
    assert "features" in table and "resemgnet" in table


@pytest.mark.slow
def test_emg_bench_cli_writes_json_and_rejects_bad_options(tmp_path):
    out = tmp_path / "bench.json"
    bad = subprocess.run(
        [sys.executable, "-m", "emg_lightning.cli.bench", "--models", "lstm"], cwd=REPO, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "--models: unknown lstm" in bad.stderr and "Traceback" not in bad.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "emg_lightning.cli.bench", "--malloc", "jemalloc"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "--malloc: invalid choice: 'jemalloc'" in bad.stderr
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "emg_lightning.cli.bench",
            "--models",
            "features",
            "--rates",
            "native",
            "--repeats",
            "1",
            "--seconds",
            "0.2",
            "--json",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["models"][0]["model"] == "features" and report["command"].startswith("emg-bench")
    assert report["models"][0]["peak_rss_mb"] > 0 and report["malloc"]  # the allocator setting is on record
    assert "ratio" in result.stdout and "total" in result.stdout
