"""The stage runner: a stage stops on SIGINT, even one whose parent ignored SIGINT."""

import signal
import subprocess
import sys

import pytest

from harness.e2e import ROOT, SIGINT_IGNORED

# A stage that would run for 20 s, then print "finished" and exit 0.
STAGE = """
import sys, time
from stages.lib import cli

def main():
    print("ready", file=sys.stderr, flush=True)
    time.sleep(20)
    print("finished", file=sys.stderr)

cli.run(main)
"""


@pytest.mark.parametrize("parent", ["default", "SIGINT ignored"])
def test_sigint_stops_a_stage_by_the_signal_in_one_line_even_if_its_parent_ignored_sigint(parent):
    launch = SIGINT_IGNORED if parent == "SIGINT ignored" else []
    proc = subprocess.Popen([*launch, sys.executable, "-c", STAGE], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr.readline() == "ready\n"
        proc.send_signal(signal.SIGINT)
        err = proc.stderr.read()
        assert proc.wait(timeout=5) == -signal.SIGINT, err
    finally:
        proc.kill()
    assert err == "interrupted: no output written\n"
