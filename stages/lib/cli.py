"""Run a stage's ``main`` so that expected failures print one clear line and exit non-zero."""

from __future__ import annotations

import sys
from collections.abc import Callable


class StageError(Exception):
    """A failure the user can fix (a bad param, a bad data file): one line, exit code 2."""


def run(main: Callable[[], None]) -> None:
    try:
        main()
    except StageError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
