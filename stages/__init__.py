"""The pipeline's stages: one thin script each, run as ``python -m stages.<name>``."""

import signal
import sys
import threading

# A stage whose parent ignored SIGINT (a script's `dvc repro &`, and DVC's stages under it)
# inherits the ignoring. `cli.run` restores Ctrl-C for `main`, but a stage spends seconds
# importing torch before `main` runs, and a Ctrl-C then was lost. This package is imported
# before any stage module: for a stage run (`python -m stages.<name>`) Ctrl-C kills the process
# until `cli.run` takes over, which is safe because nothing is written before `main`. A process
# that imports the stages and ignores SIGINT on purpose keeps ignoring it.
_ARGV = sys.orig_argv
if (
    "-m" in _ARGV[:-1]
    and _ARGV[_ARGV.index("-m") + 1].startswith("stages.")
    and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    and threading.current_thread() is threading.main_thread()
):
    signal.signal(signal.SIGINT, signal.SIG_DFL)
