"""A campaign's points beside other work: Ray's worker niceness 15 against the tool's 0, same run.

    python -m benchmarks.campaign_nice [--repeats 2]

Two tiny points (tests/tiny_params.yaml, synthetic data; each trains train_vae and what
follows it) on the tool's local Ray cluster, while two busy processes at nice 0 hold both
cores, as another user's work or a test suite would. Ray starts its workers at nice 15 and
a point's commands inherit it; the tool's local cluster asks for 0 (`RAY_worker_niceness`).
Each campaign starts from fresh copies of both remotes, so no point finds another timing's run
in the run cache. The cluster lives in a network namespace of its own (loopback only), as in
the tests. Needs root for `unshare -n`.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.campaign import tiny_pipeline
from harness.e2e import campaign_remotes, run
from harness.netns import namespace

CAMPAIGN = ["--cpus=0.5", "-S", "vae.epochs=2,3"]
BUSY = "while True: pass"


def timed_campaign(built: Path, env: dict, niceness: int, where: Path) -> tuple[float, list[float], list[float]]:
    """Wall seconds of one campaign beside two busy processes, and each point's seconds and push seconds."""
    _, driver = campaign_remotes(built / "repo", env, where)
    env = {**env, "XDG_CACHE_HOME": str(where / "cache"), "RAY_worker_niceness": str(niceness)}
    busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(2)]
    try:
        with namespace() as inside:
            start = time.perf_counter()
            output = run([*inside, sys.executable, "-m", "tools.campaign", *CAMPAIGN], driver, env)
            seconds = time.perf_counter() - start
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    print(output)
    assert output.count(": done in ") == 2, output
    points = [float(s) for s in re.findall(r": done in (\d+) s", output)]
    pushes = [float(s) for s in re.findall(r"pushed in ([\d.]+) s", output)]
    return seconds, points, pushes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tiny_pipeline("campaign-nice-") as (tmp, built, env):
        env = {**env, "HOME": str(tmp / "home")}
        walls: dict[int, list[float]] = {15: [], 0: []}
        points: dict[int, list[float]] = {15: [], 0: []}
        pushes: dict[int, list[float]] = {15: [], 0: []}
        for r in range(args.repeats):
            for niceness in (15, 0) if r % 2 == 0 else (0, 15):  # alternated: drift falls on both
                where = tmp / f"{niceness}-{r}"
                where.mkdir()
                seconds, each, pushed = timed_campaign(built, env, niceness, where)
                walls[niceness].append(seconds)
                points[niceness] += each
                pushes[niceness] += pushed
                print(f"repeat {r + 1}: nice {niceness}: {seconds:.1f} s; pushes {pushed}", flush=True)
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    print(f"\n{cpu}, {os.cpu_count()} cores; 2 tiny points of 0.5 CPU beside 2 busy processes at nice 0")
    print("| workers at | campaign wall s (each repeat) | point s (median) | push s (median) |\n|---|---|---|---|")
    for niceness in (15, 0):
        print(
            f"| nice {niceness} | {', '.join(f'{s:.1f}' for s in walls[niceness])} | "
            f"{statistics.median(points[niceness]):.0f} | {statistics.median(pushes[niceness]):.1f} |"
        )
    print(f"nice 15 / nice 0, campaign wall: {statistics.median(walls[15]) / statistics.median(walls[0]):.2f}")


if __name__ == "__main__":
    main()
