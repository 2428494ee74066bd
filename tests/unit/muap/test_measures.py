"""Clinical MUAP parameters on templates whose values are known by hand."""

import dataclasses

import numpy as np
import pytest

from emg_lightning.muap.measures import MeasureSettings, count_phases, count_turns, measure, record_summary

RATE = 10_000.0  # 0.1 ms per sample


def blocks(*levels_and_ms):
    """A template of constant blocks (level in uV, length in ms) between 10 ms of baseline on each side."""
    parts = [np.zeros(100)] + [np.full(int(round(ms * 10)), float(level)) for level, ms in levels_and_ms]
    return np.concatenate(parts + [np.zeros(100)])


def test_a_triphasic_potential_by_hand():
    m = measure(blocks((100, 1), (-200, 2), (50, 1)), RATE)
    # the first sample at or above 10 uV is sample 100 (10.0 ms), the last sample 139: duration 3.9 ms
    assert m.onset_ms == pytest.approx(10.0) and m.end_ms == pytest.approx(13.9)
    assert m.duration_ms == pytest.approx(3.9)
    assert m.amplitude_uv == pytest.approx(300.0)
    assert m.phases == 3 and m.turns == 3 and not m.polyphasic
    assert m.area_uv_ms == pytest.approx(100 * 1 + 200 * 2 + 50 * 1)  # 550 uV.ms
    assert m.thickness_ms == pytest.approx(550 / 300)
    assert m.size_index == pytest.approx(2 * np.log10(0.3) + 550 / 300)


def test_six_phases_are_polyphasic_and_a_ripple_is_no_phase():
    m = measure(blocks(*[(60 * (-1) ** k, 0.5) for k in range(6)]), RATE)
    assert m.phases == 6 and m.turns == 6 and m.polyphasic
    rippled = blocks((100, 2))
    rippled[120:140] += np.tile([5.0, -5.0], 10)  # +-5 uV on the plateau: no baseline crossing
    assert measure(rippled, RATE).phases == 1


def test_the_level_follows_a_noisy_baseline():
    rng = np.random.default_rng(0)
    x = blocks((200, 1))
    x[:100] += rng.standard_normal(100) * 8  # baseline SD ~8 uV: level max(10, 3 x 8) ~ 24 uV
    x[-100:] += rng.standard_normal(100) * 8
    m = measure(x, RATE)
    assert 9.0 <= m.onset_ms and m.end_ms <= 11.5  # the noise (below ~24 uV) is not the potential's


def test_turns_and_phases_by_hand():
    assert count_turns(np.array([0, 30, 0, 30, 0, 5, 0.0]), 25) == 3
    assert count_turns(np.array([0, 20, 0, 20, 0.0]), 25) == 0  # changes under 25 uV are no turns
    assert count_phases(np.array([0, 30, -30, 5, -5, 30.0]), 10) == 3
    assert count_phases(np.zeros(5), 10) == 0


def test_a_flat_template_has_no_duration_and_summaries_by_hand():
    flat = measure(np.zeros(300), RATE)
    assert flat.duration_ms == 0 and flat.phases == 0 and np.isnan(flat.onset_ms)
    a = measure(blocks((100, 1), (-200, 2), (50, 1)), RATE)  # 3.9 ms, 300 uV, not polyphasic
    b = measure(blocks(*[(60 * (-1) ** k, 0.5) for k in range(6)]), RATE)  # 2.9 ms, 120 uV, polyphasic
    s = record_summary([a, b])
    assert s["units"] == 2 and s["polyphasic_percent"] == pytest.approx(50.0)
    assert s["duration_ms_mean"] == pytest.approx((3.9 + 2.9) / 2)
    assert s["amplitude_uv_sd"] == pytest.approx(np.std([300.0, 120.0], ddof=1))
    assert record_summary([]) == {"units": 0}


def test_a_satellite_after_a_silent_interval_is_not_part_of_the_duration():
    # the main potential (3.9 ms), then 5 ms of baseline (more than the 3 ms gap), then a 40 uV satellite
    x = np.concatenate([blocks((100, 1), (-200, 2), (50, 1))[:-100], np.zeros(50), np.full(10, 40.0), np.zeros(100)])
    m = measure(x, RATE)
    assert m.duration_ms == pytest.approx(3.9)
    # the same satellite 2 ms after the potential (less than the gap) belongs to it
    y = np.concatenate([blocks((100, 1), (-200, 2), (50, 1))[:-100], np.zeros(20), np.full(10, 40.0), np.zeros(100)])
    assert measure(y, RATE).duration_ms == pytest.approx(3.9 + 2.0 + 1.0)


# -- edges of each definition, by hand (found by mutation testing) -----------------------------------------------------


def measures_dict(template, rate=1000.0, **settings):
    from emg_lightning.muap.measures import MeasureSettings

    return measure(np.asarray(template, dtype=float), rate, MeasureSettings(**settings)).as_dict()


def test_a_template_that_never_leaves_the_baseline_measures_nothing():
    got = measures_dict(np.r_[np.zeros(20), 3.0, -2.0, np.zeros(20)])
    assert {k: v for k, v in got.items() if not (isinstance(v, float) and np.isnan(v))} == {
        "duration_ms": 0.0, "amplitude_uv": 5.0, "phases": 0, "turns": 0, "area_uv_ms": 0.0, "polyphasic": False,
    }  # fmt: skip
    assert all(np.isnan(got[k]) for k in ("onset_ms", "end_ms", "thickness_ms", "size_index"))


def test_a_sample_at_exactly_the_level_is_part_of_the_potential_and_the_next_one_is_not():
    # 1 ms per sample, level 10 uV (quiet baseline): 10, 50, -30, 10 from 20 ms to 23 ms; a 5-uV tail after it
    got = measures_dict(np.r_[np.zeros(20), 10, 50, -30, 10, 5, np.zeros(20)])
    assert (got["onset_ms"], got["end_ms"], got["duration_ms"]) == (20.0, 23.0, 3.0)
    assert got["amplitude_uv"] == 80.0 and got["area_uv_ms"] == 100.0  # |10| + 50 + 30 + 10, not the tail's 5
    assert got["thickness_ms"] == pytest.approx(100 / 80)
    assert got["size_index"] == pytest.approx(2 * np.log10(0.08) + 100 / 80)


def test_the_baseline_is_the_outer_tenth_on_each_side_and_at_least_two_samples():
    from emg_lightning.muap.measures import baseline_sd

    x = np.zeros(30)
    x[2] = 20.0  # inside the outer tenth (3 samples) of 30
    assert baseline_sd(x) == pytest.approx(np.std([0, 0, 20, 0, 0, 0]))
    y = np.zeros(20)
    y[2] = 20.0  # outside the outer tenth (2 samples) of 20
    assert baseline_sd(y) == 0.0


def test_a_potential_is_linked_by_steps_shorter_than_the_gap():
    from emg_lightning.muap.measures import extent

    clusters = np.array([2, 3, 4, 10, 11, 12])
    assert extent(clusters, 11, 3) == (10, 12)
    assert extent(clusters, 10, 3) == (10, 12)  # the peak the first sample of its cluster
    assert extent(clusters, 3, 3) == (2, 4)
    assert extent(np.array([2, 3, 4, 7, 8]), 8, 3) == (7, 8)  # a step of exactly the gap parts them
    assert extent(np.array([2, 3, 4, 6, 8]), 8, 3) == (2, 8)  # steps of 2 link


def test_four_phases_are_not_polyphasic_five_are():
    four = measures_dict(np.r_[np.zeros(20), 40, -40, 40, -40, np.zeros(20)])
    five = measures_dict(np.r_[np.zeros(20), 40, -40, 40, -40, 40, np.zeros(20)])
    assert (four["phases"], four["polyphasic"]) == (4, False) and (five["phases"], five["polyphasic"]) == (5, True)


def test_a_sample_at_exactly_the_phase_threshold_is_no_excursion():
    assert count_phases(np.array([10.0, -20.0, 10.0]), 10.0) == 1


def test_turns_at_their_edges():
    assert count_turns(np.array([5.0]), 25.0) == 0
    assert count_turns(np.array([0.0, 25.0, 0.0]), 25.0) == 1  # exactly 25 uV each way is a turn
    assert count_turns(np.array([0.0, 24.9, 0.0]), 25.0) == 0
    assert count_turns(np.array([0.0, -30.0, 0.0]), 25.0) == 1  # a trough first
    assert count_turns(np.array([0.0, 30.0, 20.0, 60.0, 0.0]), 25.0) == 1  # a 10-uV dip on the way up is no turn
    assert count_turns(np.array([0.0, 30.0, -10.0, -40.0, 0.0]), 25.0) == 2  # the trough moves down to -40
    assert count_turns(np.array([0.0, -25.0, 0.0]), 25.0) == 1  # a first fall of exactly 25 uV sets the direction
    assert count_turns(np.array([20.0, 30.0, 0.0]), 25.0) == 0  # a 10-uV rise sets nothing; then one fall, no turn
    assert count_turns(np.array([0.0, 30.0, 5.0, 30.0]), 25.0) == 2  # a rise of exactly 25 uV from the trough


def test_turns_are_counted_from_the_first_sample_when_the_potential_starts_there():
    # onset at sample 0: no baseline sample before it; +30, -30, +30, 0: two turns (at -30 and the second +30)
    got = measures_dict(np.r_[30.0, -30.0, 30.0, np.zeros(40)], noise_factor=0.0)
    assert got["onset_ms"] == 0.0 and got["turns"] == 2


def test_a_potential_of_a_half_microvolt_swing_still_has_a_thickness():
    got = measures_dict(np.r_[np.zeros(20), 10.0, 10.5, np.zeros(20)])
    assert got["amplitude_uv"] == 0.5 and got["thickness_ms"] == pytest.approx(20.5 / 0.5)
    assert got["size_index"] == pytest.approx(2 * np.log10(0.5 / 1000) + 41.0)


def test_record_summaries_leave_out_what_one_unit_cannot_give():
    one = record_summary([measure(np.r_[np.zeros(20), 10, 50, -30, 10, np.zeros(20)], 1000.0)])
    assert one["units"] == 1 and one["duration_ms_mean"] == 3.0 and one["duration_ms_sd"] is None
    flat = measure(np.zeros(40), 1000.0)  # no potential: thickness and size index undefined
    summary = record_summary([flat, flat])
    assert summary["thickness_ms_mean"] is None and summary["size_index_sd"] is None
    assert summary["duration_ms_mean"] == 0.0 and summary["duration_ms_sd"] == 0.0


def test_turns_are_counted_from_one_baseline_sample_before_the_potential_to_one_after():
    # a level of 40 uV leaves +-30 uV of baseline out of the potential (-60, +100, -60 uV at samples 22-24); the
    # turns run from sample 21 (+30) to 25 (+30): troughs and the peak between, 3 turns; the -30 uV samples at 20 and
    # 26 are not read
    template = np.r_[np.zeros(20), -30.0, 30.0, -60.0, 100.0, -60.0, 30.0, -30.0, np.zeros(20)]
    got = measure(template, 1000.0, MeasureSettings(level_uv=40.0, noise_factor=0.0))
    assert (got.onset_ms, got.end_ms, got.turns) == (22.0, 24.0, 3)


def test_measures_as_a_dictionary_are_the_fields_by_name():
    got = measure(np.r_[np.zeros(20), 10.0, 50.0, -30.0, 10.0, np.zeros(20)], 1000.0)
    assert got.as_dict() == {f.name: getattr(got, f.name) for f in dataclasses.fields(got)}
    assert got.as_dict()["amplitude_uv"] == 80.0


def test_a_gap_of_one_sample_links_nothing_to_the_peak():
    # "linked by steps shorter than the gap": at 1 kHz a 1-ms gap is one sample, and no step is shorter than one
    # sample, so the potential is its peak's sample alone (a 2-ms gap links the neighbours: 3 samples)
    template = np.r_[np.zeros(20), 50.0, 100.0, 50.0, np.zeros(20)]
    assert measure(template, 1000.0, MeasureSettings(gap_ms=1.0)).duration_ms == 0.0
    assert measure(template, 1000.0, MeasureSettings(gap_ms=2.0)).duration_ms == 2.0
