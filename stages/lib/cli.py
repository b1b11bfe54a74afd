"""Run a stage's ``main`` so that expected failures print one clear line and exit non-zero."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable


class StageError(Exception):
    """A failure the user can fix (a bad param, a bad data file): one line, exit code 2."""


class Stopped(BaseException):
    """SIGTERM or SIGHUP (a `kill`, a closed terminal), raised where the stage is, as SIGINT's
    KeyboardInterrupt is: DVC forwards neither to its stage, and Python's default for both dies
    at once, leaving a half-written output's temporary file beside it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop(signum: int, frame: object) -> None:
    raise Stopped(signum)


def run(main: Callable[[], None]) -> None:
    # SIGINT ignored by a parent stays ignored across fork and exec, and Python then installs no
    # KeyboardInterrupt handler. A script's `cmd &` job starts so (without job control), and so
    # does everything it starts: its `dvc repro`, DVC's stages. Ctrl-C or `kill -INT` would then
    # leave the stage training to the end, and DVC would cache the result.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop)
    try:
        main()
    except StageError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except (KeyboardInterrupt, Stopped) as err:
        # Outputs are renamed into place only when main returns (io.transaction), so none is.
        signum = err.signum if isinstance(err, Stopped) else signal.SIGINT
        print(f"{'interrupted' if signum == signal.SIGINT else 'stopped'}: no output written", file=sys.stderr)
        # Die by the signal, so that a calling shell sees a Ctrl-C and stops its script too (the
        # training stages, left to Python, exited with status 1).
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        sys.exit(128 + signum)  # only if the signal could not be delivered
