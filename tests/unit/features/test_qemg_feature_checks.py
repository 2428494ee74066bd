"""Every qEMG feature has a test that checks its value against an independently derived one (a formula, scipy, or a
potential built by hand): this map names the test for each feature, and fails when a feature is added without one."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from emg_lightning.features.qemg import qemg_feature_names

TESTS = Path(__file__).parents[2]
QEMG = "unit/features/test_qemg.py"
BOUNDARIES = "unit/features/test_qemg_boundaries.py"
BASIC = "unit/models/test_models.py"
SINE = f"{BASIC}::test_emg_features_of_a_sine_match_their_formulas"
TRAIN = f"{QEMG}::test_potential_counts_and_fractions_of_a_train_of_known_potentials"

CHECKED_BY = {
    # the classical baseline's features: a sine's closed forms (all band powers: one holds it all, they sum to 1)
    r"log_mav|log_rms|log_peak|log_waveform_length|zero_crossing_rate|slope_sign_change_rate": [SINE],
    r"log_hjorth_mobility|log_hjorth_complexity|skewness|excess_kurtosis": [SINE],
    r"log_mean_frequency|log_median_frequency|log_power_[\d.]+_[\d.]+": [SINE],
    # Welch: each from its definition on scipy's periodogram, at six rates
    r"welch_log_power_[\d.]+_[\d.]+|log_edge_frequency_(50|80|95)|spectral_(flatness|entropy|slope)": [
        f"{QEMG}::test_welch_features_by_their_definitions",
        f"{BOUNDARIES}::test_power_all_at_half_the_rate_puts_every_edge_frequency_there",
    ],
    r"log_noise_sigma": [f"{BOUNDARIES}::test_a_potential_is_a_peak_above_four_noise_sigmas_and_at_least_30_uv"],
    r"log_peaks_per_s_above_(50|100|200|500|1000|2000)uv": [
        TRAIN,
        f"{BOUNDARIES}::test_potentials_are_counted_two_milliseconds_apart_and_peaks_one",
    ],
    r"log_peaks_per_s_above_(3|5|8|12)sigma": [
        f"{QEMG}::test_rates_are_per_second_and_noise_relative_thresholds_scale_with_the_noise"
    ],
    r"log_(turns_per_s|amplitude_per_turn)_(50|100|200)uv": [
        f"{QEMG}::test_willison_turns_and_amplitudes_by_hand",
        f"{BOUNDARIES}::test_willison_turns_from_a_baseline_away_from_zero_and_at_the_criterion",
    ],
    r"log_abs_percentile_[\d.]+": [f"{QEMG}::test_spectral_and_amplitude_features_of_a_sine_match_its_formulae"],
    r"log_high_passed_abs_percentile_[\d.]+": [
        f"{QEMG}::test_the_high_passed_percentiles_are_of_a_zero_phase_order_4_butterworth"
    ],
    r"log_max_slope_uv_per_ms|log_potentials_per_s|polyphasic_fraction|short_fraction": [TRAIN],
    # the shape summaries: each measure of identical potentials (median = 90th percentile = the hand value), the
    # percentiles themselves on potentials of three sizes, and each measure at its definition's edges
    r"(log_amplitude|half_width_ms|duration_ms|phases|turns|thickness_ms|rise_ms)_(median|p90)": [
        TRAIN,
        f"{BOUNDARIES}::test_shape_summaries_are_the_median_and_the_interpolated_90th_percentile",
    ],
}


@pytest.mark.parametrize("rate", [1171.875, 2343.75, 4687.5, 10000.0, 23437.5, 32768.0])
def test_every_feature_at_every_rate_has_exactly_one_entry(rate):
    for name in qemg_feature_names(rate):
        matches = [pattern for pattern in CHECKED_BY if re.fullmatch(pattern, name)]
        assert len(matches) == 1, f"{name} at {rate} Hz is checked by {len(matches)} entries: {matches}"


def test_every_entry_names_tests_that_exist_and_a_feature():
    names = {n for rate in (1171.875, 4687.5, 23437.5) for n in qemg_feature_names(rate)}
    for pattern, tests in CHECKED_BY.items():
        assert any(re.fullmatch(pattern, n) for n in names), f"{pattern} matches no feature"
        for test in tests:
            path, function = test.split("::")
            defined = {node.name for node in ast.walk(ast.parse((TESTS / path).read_text()))
                       if isinstance(node, ast.FunctionDef)}  # fmt: skip
            assert function in defined, f"{test} does not exist"
