"""The stage runner: a stage stops on SIGINT, even one whose parent ignored SIGINT, from its first import on,
and on SIGTERM and SIGHUP leaving no output's temporary file behind."""

import os
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
        assert proc.wait(timeout=60) == -signal.SIGINT, err
    finally:
        proc.kill()
    assert err == "interrupted: no output written\n"


# A stage that writes an output through io.transaction, then waits inside it.
WRITING = """
import sys, time
from pathlib import Path
from stages.lib import cli, io

def main():
    with io.transaction() as out:
        out.write_json(Path(sys.argv[1]), {"written": True})
        print("ready", file=sys.stderr, flush=True)
        time.sleep(20)

cli.run(main)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: signal.Signals(s).name)
def test_sigterm_and_sighup_stop_a_stage_by_the_signal_leaving_no_temporary_file(tmp_path, signum):
    proc = subprocess.Popen([sys.executable, "-c", WRITING, str(tmp_path / "metrics.json")], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stderr.readline() == "ready\n"
        assert [p.name for p in tmp_path.iterdir()]  # the output's temporary file, before the signal
        proc.send_signal(signum)
        err = proc.stderr.read()
        assert proc.wait(timeout=60) == -signum, err
    finally:
        proc.kill()
    assert err == "stopped: no output written\n"
    assert not list(tmp_path.iterdir())


def test_sigint_stops_a_stage_while_it_imports_torch_even_if_its_parent_ignored_sigint(tmp_path):
    """A stage spends seconds importing torch before `cli.run` restores Ctrl-C; a Ctrl-C then must
    not be lost. A stand-in torch holds the import until the signal comes."""
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text(
        "import sys, time\nprint('importing torch', file=sys.stderr, flush=True)\ntime.sleep(30)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    stage = [sys.executable, "-m", "stages.train_ae", "--seed", "1"]
    proc = subprocess.Popen([*SIGINT_IGNORED, *stage], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr.readline() == "importing torch\n"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == -signal.SIGINT
    finally:
        proc.kill()
