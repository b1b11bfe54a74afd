"""Run a stage's ``main`` so that expected failures print one clear line and exit non-zero."""

from __future__ import annotations

import sys
from collections.abc import Callable

from stages.lib.data import DataError
from stages.lib.params import ParamsError


def run(main: Callable[[], None]) -> None:
    try:
        main()
    except (ParamsError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
