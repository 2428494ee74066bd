"""Decomposition on signals whose motor units are known, and the records it must refuse."""

import numpy as np
import pytest

from emg_lightning.data.records import at_adc_limits
from emg_lightning.muap.analysis import NoPotentialsFound, analyse, around_clipping
from emg_lightning.muap.decompose import DecompositionSettings, decompose, fire_as_one, shared_share
from emg_lightning.runtime.errors import DataError

from conftest import motor_unit_signal

RATE = 23437.5


def matched(found: np.ndarray, truth: np.ndarray, tolerance: int) -> int:
    return int(sum(np.min(np.abs(truth - f)) <= tolerance for f in found))


def test_two_known_units_are_found_with_their_discharges():
    signal, truth = motor_unit_signal(rate=RATE, seconds=10.0)
    decomposition = decompose(signal, RATE)
    tolerance = int(0.0005 * RATE)  # +-0.5 ms
    for times in truth:
        # the found unit holding most of this unit's discharges
        best = max(decomposition.units, key=lambda u: matched(u.discharges, times, tolerance))
        hits = matched(best.discharges, times, tolerance)
        assert hits / len(best.discharges) >= 0.95, "precision"
        assert hits / len(times) >= 0.85, "recall (discharges superimposed on the other unit's are lost)"
    assert len(decomposition.units) == 2
    assert decomposition.explained_energy > 0.5


def test_the_analysis_measures_each_unit_as_built():
    signal, truth = motor_unit_signal(rate=RATE, seconds=10.0)
    analysis = analyse(signal, RATE)
    amplitudes = sorted(m.amplitude_uv for m in analysis.measures)
    assert amplitudes == pytest.approx([250.0, 400.0], rel=0.1)  # the shapes' peak-to-peak, noise aside
    rates = sorted(f.rate_hz for f in analysis.firing)
    assert rates == pytest.approx([9.0, 12.0], rel=0.1)
    assert analysis.summary["units"] == 2 and not analysis.low_yield


def test_records_without_motor_units_are_refused_in_one_line():
    with pytest.raises(NoPotentialsFound, match=r"flat in the 1000-5000 Hz detection band \(100.0% of consecutive"):
        analyse(np.zeros(int(RATE * 5)), RATE)
    noise = np.random.default_rng(1).standard_normal(int(RATE * 5)) * 5
    with pytest.raises(NoPotentialsFound, match="no motor-unit potentials found"):
        analyse(noise, RATE)
    with pytest.raises(DataError, match="at least 11000 Hz"):
        analyse(noise[:4000], 4000.0)
    with pytest.raises(DataError, match="non-finite"):
        analyse(np.full(100, np.nan), RATE)


def test_a_unit_firing_too_rarely_is_not_reported():
    units = [{"amplitude_uv": 400.0, "width_ms": 0.5, "rate_hz": 0.5, "sign": 1.0}]  # 5 discharges in 10 s
    signal, _ = motor_unit_signal(rate=RATE, seconds=10.0, units=units)
    with pytest.raises(NoPotentialsFound):
        analyse(signal, RATE)
    assert analyse(signal, RATE, DecompositionSettings(min_discharges=3)).summary["units"] == 1


def test_merging_rules_by_hand():
    # shared discharges: 3 of the smaller unit's 4 within 2 samples of the other's
    assert shared_share(np.array([10, 100, 200, 300]), np.array([11, 99, 202, 500, 900]), 2) == pytest.approx(0.75)
    settings = DecompositionSettings()
    rate = 1000.0  # 1 sample per ms: refractory 20 samples
    halves = np.arange(0, 2000, 100)  # one 10 Hz train split into alternate discharges: fires as one
    assert fire_as_one(halves[::2], halves[1::2], rate, settings)
    other = halves + 37  # a second unit at the same rate, 37 ms later: half its intervals are short
    assert not fire_as_one(halves, other, rate, settings)


def test_saturated_stretches_are_left_out():
    assert around_clipping(at_adc_limits(np.array([0, 32767, 0, 0, 0, -32768])), 1000.0, margin_ms=1.0).tolist() == [
        True, True, True, False, True, True,
    ]  # fmt: skip
    signal, _ = motor_unit_signal(rate=RATE, seconds=10.0)
    clipped = np.zeros(len(signal), bool)
    clipped[: len(signal) // 2] = True  # the first half saturated: its discharges are not found
    analysis = analyse(signal, RATE, excluded=clipped)
    first = min(int(u.discharges.min()) for u in analysis.decomposition.units)
    assert first >= len(signal) // 2 - int(0.002 * RATE)  # re-timing moves a discharge by at most the dead time
    assert analysis.summary["excluded_s"] == pytest.approx(5.0, abs=1e-3)
