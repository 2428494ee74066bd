"""The commands (emg-train, emg-cv, ...): the top floor, which nothing imports.

Importing any of them first makes a Ctrl-C that lands while Python is still loading modules (seconds on a busy
machine) end the command with one line and exit 130, not a traceback through whichever library was loading; once
the command runs, Ctrl-C raises KeyboardInterrupt as usual and each command handles it."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType


def _ctrl_c(signum: int, frame: FrameType | None) -> None:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            sys.stderr.write(
                "error: interrupted by Ctrl-C while the command was loading its modules (nothing had started)\n"
            )
            sys.stderr.flush()
            os._exit(130)
        frame = frame.f_back
    raise KeyboardInterrupt


if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # left alone where SIGINT is ignored (nohup, &)
    signal.signal(signal.SIGINT, _ctrl_c)
