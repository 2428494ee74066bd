"""Errors a user can fix. Entry points print them as one line, never as a traceback."""


class EMGLightningError(Exception):
    """Base class: the message names the file or setting and says what to do."""


class ConfigError(EMGLightningError):
    """A setting is missing, unknown or out of range."""


class DataError(EMGLightningError):
    """A data file or directory cannot be used as it is."""


class DivergedError(EMGLightningError):
    """Training produced non-finite numbers: no result is written."""
