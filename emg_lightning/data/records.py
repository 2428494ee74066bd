"""The one shape every reader returns: a digitised single-channel recording and who/what it is."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Class names used everywhere (labels, metrics keys, reports). Index order keeps ALSNet's binary coding
# (0 = Normal, 1 = ALS) when the class list is [normal, als].
CLASS_NAMES = ("normal", "als", "myopathy")


def at_adc_limits(digital: np.ndarray) -> np.ndarray:
    """Samples at the int16 extremes: the ADC's full scale, i.e. clipped (saturated)."""
    limits = np.iinfo(np.int16)
    return (digital <= limits.min) | (digital >= limits.max)


@dataclass(frozen=True)
class Recording:
    """One needle-EMG recording as stored: int16 ADC samples plus the gain that turns them into microvolts.

    Readers keep digital values (not physical floats) so that saturated samples stay visible as the int16
    extremes and never turn into NaN, and so that the window cache can store them losslessly.
    """

    name: str
    subject: str
    label: str  # one of CLASS_NAMES
    sample_rate: float  # Hz
    digital: np.ndarray  # int16, shape (n_samples,)
    adc_gain: float  # ADC units per microvolt
    metadata: dict[str, str] = field(default_factory=dict)
    unit: str = "uV"  # the physical unit the header's gain is in, as read (or assumed, and then said so)
    # samples the reader knows to be at its ADC's limits (an ADC of fewer bits, or values shifted by a baseline);
    # None: the int16 extremes
    clipped_samples: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def clipped(self) -> np.ndarray:
        """Samples at the ADC's limits (saturated): the reader's, else the int16 extremes."""
        return at_adc_limits(self.digital) if self.clipped_samples is None else self.clipped_samples

    @property
    def microvolts(self) -> np.ndarray:
        return self.digital.astype(np.float32) / np.float32(self.adc_gain)

    @property
    def duration_s(self) -> float:
        return len(self.digital) / self.sample_rate
