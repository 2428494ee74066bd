"""The embedded synthetic needle-EMG data set: the generator (a reader like the others) and, beside it, the
statistics and calibration that compare its output with the real N2001 recordings."""

from emg_lightning.data.readers.synthetic.generator import (
    ADC_GAIN,
    ADC_LIMIT_UV,
    GENERATOR_VERSION,
    NATIVE_RATE_HZ,
    SyntheticSpec,
    generate,
)

__all__ = ["ADC_GAIN", "ADC_LIMIT_UV", "GENERATOR_VERSION", "NATIVE_RATE_HZ", "SyntheticSpec", "generate"]
