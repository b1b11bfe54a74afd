"""Run a stage's ``main`` so that expected failures print one clear line and exit non-zero."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable


class StageError(Exception):
    """A failure the user can fix (a bad param, a bad data file): one line, exit code 2."""


def run(main: Callable[[], None]) -> None:
    # SIGINT ignored by a parent stays ignored across fork and exec, and Python then installs no
    # KeyboardInterrupt handler. A script's `cmd &` job starts so (without job control), and so
    # does everything it starts: its `dvc repro`, DVC's stages. Ctrl-C or `kill -INT` would then
    # leave the stage training to the end, and DVC would cache the result.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        main()
    except StageError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        # Outputs are renamed into place only when main returns (io.transaction), so none is.
        print("interrupted: no output written", file=sys.stderr)
        # Die by the signal, so that a calling shell sees a Ctrl-C and stops its script too (the
        # training stages, left to Python, exited with status 1).
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        sys.exit(128 + signal.SIGINT)  # only if the signal could not be delivered
