"""emg-lightning: Lightning + Hydra experiments for neuromuscular disorder detection from raw needle EMG."""

__version__ = "0.1.0"
