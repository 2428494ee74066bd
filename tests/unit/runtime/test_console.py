"""The commands' error handling: one line and an exit code, for errors, Ctrl-C and SIGTERM."""

import os
import signal
import time

import pytest

from emg_lightning.runtime.console import INTERRUPTED, one_line_errors
from emg_lightning.runtime.errors import DataError


def test_an_error_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as done, one_line_errors():
        raise DataError("x.hea: damaged\nsecond line")
    assert done.value.code == 2 and capsys.readouterr().err == "error: x.hea: damaged\n"


def test_sigterm_is_one_line_and_exit_143_and_the_handler_is_restored(capsys):
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as done, one_line_errors():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the signal arrives first
    assert done.value.code == 143
    assert capsys.readouterr().err == "error: " + INTERRUPTED.replace("Ctrl-C", "SIGTERM") + "\n"
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_command_whose_jobs_handle_sigterm_keeps_the_default():
    before = signal.getsignal(signal.SIGTERM)
    with one_line_errors(sigterm=False):
        assert signal.getsignal(signal.SIGTERM) is before
