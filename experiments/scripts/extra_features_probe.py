"""Probe: do 18 further physiological features lift the qEMG baseline? Families fixed before the run:

  firing (4)        the 1-ms spike train of detected potentials (peaks of |x| above max(4 sigma, 30 uV), 2 ms apart):
                    highest autocorrelation at 25-200 ms lags and its lag (a motor unit's firing period), median and
                    coefficient of variation of the inter-peak intervals: recruitment, as clinical qEMG reads it
  cloud (10)        Stalberg-style interference cloud: 50-ms epochs' turns per second (100 uV), mean swing per turn
                    and peak-to-peak amplitude, each as its 10th / 50th / 90th percentile over the window's epochs,
                    and the share of epochs whose peak-to-peak exceeds 8 sigma
  MUAP spectrum (2) for the 32 largest potentials (+-3 ms, Hann window): median share of power above 1 kHz and
                    the log of the median mean frequency (short polyphasic myopathic potentials are high-frequency)
  stationarity (2)  spread of the window's quarters' log RMS, log share of power above 1 kHz

Nested, so the outer figure is honest for the procedure: in each LOSO fold and for each seed, the baseline's own
inner cross-validation (5 subject-grouped folds, 3 draws from the seed, held-out class-balanced log-loss, the same
L2 grid) scores both feature sets on the 21 non-test subjects; the better one is refitted and tests the held-out
subject. Prints window and record (mean probability) accuracy and balanced accuracy, mean over seeds 0, 1, 2, for
the nested procedure and for each set alone, and how often each set was chosen.

    EMGLAB_DIR=../shared/data/emglab-n2001-bb .venv/bin/python experiments/scripts/extra_features_probe.py
"""

from __future__ import annotations

import numpy as np
import torch
from qemg_windows import load_qemg_windows, nested_feature_choice, print_nested_choice
from scipy import signal

SEEDS = (0, 1, 2)


def extra_features(x: np.ndarray, fs: float) -> list[float]:
    x = x - x.mean()
    magnitude = np.abs(x)
    sigma = float(np.median(magnitude) / 0.6745) + 1e-9
    seconds = len(x) / fs
    peaks, properties = signal.find_peaks(magnitude, height=max(4 * sigma, 30.0), distance=max(1, round(2e-3 * fs)))
    train = np.zeros(int(seconds * 1000) + 1)
    np.add.at(train, (peaks / fs * 1000).astype(int), 1)
    centred = train - train.mean()
    autocorrelation = np.correlate(centred, centred, "full")[len(centred) - 1 :] / (centred @ centred + 1e-9)
    lags = np.arange(len(autocorrelation))
    band = (lags >= 25) & (lags <= 200)
    intervals = np.diff(peaks) / fs * 1000
    firing = [
        float(autocorrelation[band].max()),
        float(np.log(lags[band][autocorrelation[band].argmax()])),
        float(np.log1p(np.median(intervals))) if len(intervals) else 0.0,
        float(intervals.std() / intervals.mean()) if len(intervals) > 1 else 0.0,
    ]
    epoch = int(0.05 * fs)
    turns, swings, spans = [], [], []
    for start in range(0, len(x) - epoch + 1, epoch):
        segment = x[start : start + epoch]
        extrema = segment[np.flatnonzero(np.diff(np.sign(np.diff(segment))) != 0) + 1]
        steps = np.abs(np.diff(extrema))
        big = steps[steps >= 100.0]
        turns.append(np.log1p(len(big) / 0.05))
        swings.append(np.log(big.mean() + 1.0) if len(big) else 0.0)
        spans.append(np.log(segment.max() - segment.min() + 1.0))
    cloud = [float(v) for values in (turns, swings, spans) for v in np.percentile(values, [10, 50, 90])]
    cloud.append(float(np.mean(np.array(spans) > np.log(8 * sigma))))
    half = round(3e-3 * fs)
    largest = peaks[np.argsort(properties["peak_heights"])[-32:]] if len(peaks) else peaks
    largest = largest[(largest >= half) & (largest < len(x) - half)]
    if len(largest):
        segments = np.stack([x[p - half : p + half] for p in largest]) * np.hanning(2 * half)
        power = np.abs(np.fft.rfft(segments, axis=1)) ** 2
        frequency = np.fft.rfftfreq(2 * half, 1 / fs)
        total = power.sum(axis=1) + 1e-9
        spectrum = [
            float(np.median(power[:, frequency >= 1000].sum(axis=1) / total)),
            float(np.log(np.median((power * frequency).sum(axis=1) / total) + 1.0)),
        ]
    else:
        spectrum = [0.0, 0.0]
    quarters = np.log(np.array([np.sqrt(np.mean(q**2)) for q in np.array_split(x, 4)]) + 1e-3)
    high_passed = signal.sosfiltfilt(signal.butter(4, 1000.0, "highpass", fs=fs, output="sos"), x)
    stationarity = [float(quarters.std()), float(np.log(np.mean(high_passed**2) / (np.mean(x**2) + 1e-9) + 1e-9))]
    return firing + cloud + spectrum + stationarity


def main() -> None:
    torch.set_num_threads(1)
    data = load_qemg_windows(sample_rate=None)  # native rate, as recorded
    extra = np.array([extra_features(np.asarray(w, dtype=np.float64), data.sample_rate) for w in data.windows_uv()])
    if not np.isfinite(extra).all():
        raise SystemExit("extra features: non-finite values")
    sets = {"baseline (88)": data.x, "baseline + extra (106)": np.concatenate([data.x, extra], axis=1)}
    print_nested_choice(nested_feature_choice(sets, data, SEEDS), SEEDS)


if __name__ == "__main__":
    main()
