import json
import os

import numpy as np
import pytest
from scipy import signal as sps

from emg_lightning.data.cache import build_table, cached_table
from emg_lightning.data.records import Recording
from emg_lightning.data.windows import WindowSettings, resample, window_record
from emg_lightning.runtime.errors import ConfigError, DataError

FS = 23437.5


def recording(name="N2001C01BB01", seconds=11.184, seed=0, label="normal", subject="C01"):
    rng = np.random.default_rng(seed)
    digital = np.round(rng.standard_normal(int(seconds * FS)) * 30 * 13.107).astype(np.int16)
    return Recording(name, subject, label, FS, digital, 13.107)


def test_eleven_one_second_windows_per_n2001_record():
    w = window_record(recording(), WindowSettings())
    assert w.windows.shape == (11, 23437)  # 262,124 samples; 1 s at 23,437.5 Hz floors to 23,437
    assert list(w.window_index) == list(range(11))
    assert w.start_sample[1] == round(FS)


def test_hop_gives_overlapping_windows():
    w = window_record(recording(seconds=3.0), WindowSettings(window_s=1.0, hop_s=0.5))
    assert len(w.windows) == 5


def test_flat_and_saturated_windows_are_dropped_and_counted():
    r = recording()
    digital = r.digital.copy()
    digital[int(2 * FS) : int(3 * FS) + 5] = 0  # window 2 flat (dead electrode)
    digital[int(5 * FS) : int(5.5 * FS)] = 32767  # window 5 half saturated
    w = window_record(Recording(r.name, r.subject, r.label, FS, digital, r.adc_gain), WindowSettings())
    assert w.dropped == {"flat": 1, "saturated": 1}
    assert 2 not in w.window_index and 5 not in w.window_index and len(w.windows) == 9


def test_tail_trim_removes_the_last_window_of_matching_records():
    settings = WindowSettings(trim_after_s={"N2001A08": 10.69})
    trimmed = window_record(recording("N2001A08BB03", subject="A08", label="als"), settings)
    assert len(trimmed.windows) == 10 and trimmed.dropped == {"trimmed": 1}
    assert len(window_record(recording("N2001A07BB03"), settings).windows) == 11


def test_resampling_keeps_timing_and_filters_aliases():
    t = np.arange(int(FS)) / FS
    low = np.sin(2 * np.pi * 100 * t)
    high = np.sin(2 * np.pi * 4000 * t)  # above the new Nyquist (2,343.75 Hz): must vanish
    out = resample(low + high, FS, FS / 5)
    t_out = np.arange(len(out)) / (FS / 5)
    inner = slice(200, -200)
    assert np.abs(out[inner] - np.sin(2 * np.pi * 100 * t_out)[inner]).max() < 0.02
    w = window_record(recording(), WindowSettings(sample_rate=FS / 5))
    assert w.windows.shape == (11, 4687)


def test_bad_window_settings_name_the_setting():
    with pytest.raises(ConfigError, match="data.window_s"):
        WindowSettings(window_s=0)
    with pytest.raises(ConfigError, match="data.sample_rate"):
        WindowSettings(sample_rate=-1)


def test_any_rate_to_any_rate_keeps_the_band_and_removes_aliases():
    fs, target = 32768.0, 4687.5  # the Algiers rate to N2001's qEMG rate: 9375/65536, no simple ratio
    t = np.arange(int(5 * fs)) / fs
    kept, above_nyquist = np.sin(2 * np.pi * 1000 * t), np.sin(2 * np.pi * 3000 * t)
    y = resample(kept + above_nyquist, fs, target)
    assert len(y) == round(len(t) * target / fs)
    expected = np.sin(2 * np.pi * 1000 * np.arange(len(y)) / target)  # the 1 kHz sine, sampled at the new rate
    middle = slice(500, -500)
    assert np.abs(y[middle] - expected[middle]).max() < 1e-3  # no delay, no gain change, 3 kHz gone (no alias)
    # the resampler's own error in the kept band: under 4e-7 of the amplitude (libsoxr's very high quality; its
    # default quality reaches 6e-7 here)
    alone = resample(kept, fs, target)
    assert np.abs(alone[middle] - expected[middle]).max() < 4e-7
    # a simple ratio keeps scipy's polyphase path, bit for bit what every N2001 figure was computed with
    x = np.random.default_rng(0).standard_normal(23437)
    assert np.array_equal(resample(x, 23437.5, 4687.5), sps.resample_poly(x, 1, 5))


def test_short_records_are_skipped():
    table = build_table([recording(), recording("N2001C01BB02", seconds=0.5)], WindowSettings())
    assert table.summary["records_skipped_short"] == ["N2001C01BB02"]
    assert len(table) == 11


def test_no_surviving_window_names_the_settings_that_drop_them():
    with pytest.raises(DataError, match=r"no window survived.*data.window_s.*data.min_std_uv, data.max_saturated_frac"):
        build_table([recording("N2001C01BB02", seconds=0.5)], WindowSettings())


def test_mixed_rates_without_a_target_rate_are_refused():
    other = Recording("X2", "C02", "normal", 10_000.0, np.ones(20_000, np.int16), 13.107)
    with pytest.raises(DataError, match="X2 has sampling rate 10000 Hz.*set data.sample_rate"):
        build_table([recording(), other], WindowSettings())


def test_cache_is_built_once_and_memory_mapped(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return build_table(
            [recording(), recording("N2001A01BB01", subject="A01", label="als", seed=1)], WindowSettings()
        )

    first = cached_table("t", {"k": 1}, build, tmp_path)
    second = cached_table("t", {"k": 1}, build, tmp_path)
    assert len(calls) == 1
    assert isinstance(second.windows, np.memmap) and second.windows.dtype == np.int16
    assert np.array_equal(first.windows, second.windows)
    assert list(second.columns["subject"][:1]) == ["C01"] and len(second) == 22
    cached_table("t", {"k": 2}, build, tmp_path)  # other settings: another key, another build
    assert len(calls) == 2


def test_interrupted_and_corrupt_caches_are_never_trusted(tmp_path):
    build = lambda: build_table([recording()], WindowSettings())  # noqa: E731
    table = cached_table("t", {"k": 1}, build, tmp_path)
    (directory,) = [p for p in tmp_path.iterdir() if p.name.startswith("t-")]
    # a build killed mid-write leaves only a hidden staging folder, which is never read
    (tmp_path / ".t-deadbeef.abc").mkdir()
    assert len(cached_table("t", {"k": 1}, build, tmp_path)) == len(table)
    # a damaged table is rebuilt
    meta = json.loads((directory / "table.json").read_text())
    meta["n_windows"] = 3
    (directory / "table.json").write_text(json.dumps(meta))
    assert len(cached_table("t", {"k": 1}, build, tmp_path)) == 11
    os.truncate(directory / "windows.npy", 100)
    assert len(cached_table("t", {"k": 1}, build, tmp_path)) == 11


def test_a_change_to_the_windowing_code_gives_the_tables_a_new_key(tmp_path, monkeypatch):
    from emg_lightning.data import sources
    from emg_lightning.data.readers import SourceOptions

    spec = {"subjects_per_class": {"normal": 1, "als": 1}, "records_per_subject": [1, 1], "duration_s": 2.0}
    options = SourceOptions(synthetic=spec)
    settings = WindowSettings(sample_rate=2343.75)
    first = sources.load_window_table("synthetic", settings, tmp_path, options)
    assert sources.load_window_table("synthetic", settings, tmp_path, options).directory == first.directory
    monkeypatch.setattr(sources, "WINDOW_CODE_VERSION", "edited-code")
    rebuilt = sources.load_window_table("synthetic", settings, tmp_path, options)
    assert rebuilt.directory != first.directory and len(list(tmp_path.iterdir())) == 2
