"""Run a command and append its wall time, training time and peak resident memory to $BENCH_LOG.

Used by benchmarks.study, which prefixes every stage command in a scratch copy of dvc.yaml.
The command's stderr passes through; the training time is the sum of the per-epoch times
that ``stages.lib.train.fit`` prints, read by ``stages.lib.progress``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from stages.lib import progress


def main() -> None:
    command = sys.argv[1:]
    start = time.perf_counter()
    child = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    training = 0.0
    for line in child.stderr:
        sys.stderr.write(line)
        if epoch := progress.parse(line):
            training += epoch.seconds
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    record = {
        "cmd": " ".join(command[2:]),
        "seconds": round(seconds, 2),
        "training_s": round(training, 2),
        "max_rss_mb": usage.ru_maxrss // 1024,
    }
    with open(os.environ["BENCH_LOG"], "a") as log:
        log.write(json.dumps(record) + "\n")
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
