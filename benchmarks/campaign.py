"""A campaign of 4 tiny points on a Ray cluster of one node against two, same run.

    python -m benchmarks.campaign [--repeats 2]

The tiny pipeline (tests/tiny_params.yaml, synthetic data) is built once and pushed to a
bare git remote and a local DVC remote; each timed campaign starts from copies of both, so no
point finds another timing's run in the run cache. Every point trains (train_vae and what
follows it). Each node is `ray start --num-cpus 1`, so one node runs one point at a time and
two nodes two; the cluster lives in a network namespace of its own (loopback only), as in the
tests. Needs root for `unshare -n`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from harness.e2e import build_pipeline, campaign_remotes, run
from harness.netns import RAY, RAY_ENV, namespace, refused

CAMPAIGN = ["-S", "vae.epochs=2,3", "-S", "vae.lr=0.001,0.002"]


def timed_campaign(built: Path, env: dict, nodes: int, where: Path) -> tuple[float, int, list[tuple[int, float]]]:
    """Seconds of one campaign on a cluster of `nodes` one-CPU nodes, how many nodes ran points, and
    each point's fetch (files, seconds) in the order the points ended."""
    _, driver = campaign_remotes(built / "repo", env, where)
    env = {**env, "XDG_CACHE_HOME": str(where / "cache")}  # the nodes' shared DVC cache: empty at first
    ray = [RAY, "start", "--node-ip-address=127.0.0.1", "--num-cpus=1"]
    with namespace() as inside:
        run([*inside, *ray, "--head", "--port=6379", "--include-dashboard=false"], driver, env)
        for _ in range(nodes - 1):
            run([*inside, *ray, "--address=127.0.0.1:6379"], driver, env)
        start = time.perf_counter()
        output = run(
            [*inside, sys.executable, "-m", "tools.campaign", "--address=127.0.0.1:6379", *CAMPAIGN], driver, env
        )
        seconds = time.perf_counter() - start
    print(output)
    used = set(re.findall(r"on node 127\.0\.0\.1 ([0-9a-f]{8})", output))
    assert output.count(": done in ") == 4, output
    fetches = [(int(n), float(s)) for n, s in re.findall(r"fetched (\d+) files in ([\d.]+) s", output)]
    return seconds, len(used), fetches


@contextlib.contextmanager
def tiny_pipeline(prefix: str) -> Iterator[tuple[Path, Path, dict]]:
    """The tiny pipeline built once in a temporary folder, for the campaigns of one benchmark: the
    folder, the build, and its environment with Ray's. Refused where no network namespace can be
    made."""
    if refused():
        raise SystemExit(f"no network namespace here: {refused()}")
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        built = Path(tmp) / "built"
        built.mkdir()
        _, env, _ = build_pipeline(built)
        yield Path(tmp), built, {**env, **RAY_ENV}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tiny_pipeline("campaign-bench-") as (tmp, built, env):
        env = {**env, "RAY_AUTH_MODE": "token"}
        subprocess.run([RAY, "get-auth-token", "--generate"], env=env, capture_output=True, check=True)
        # Ray writes it readable by every user, and the campaign refuses such a token.
        (Path(env.get("HOME") or Path.home()) / ".ray" / "auth_token").chmod(0o600)
        times: dict[int, list[float]] = {1: [], 2: []}
        fetches: list[list[tuple[int, float]]] = []
        for r in range(args.repeats):
            for nodes in (1, 2):  # alternated, so drift on the machine falls on both
                where = tmp / f"{nodes}-{r}"
                where.mkdir()
                seconds, used, fetched = timed_campaign(built, env, nodes, where)
                times[nodes].append(seconds)
                if nodes == 1:
                    fetches.append(fetched)
                print(f"repeat {r + 1}: {nodes} node(s): {seconds:.1f} s, points ran on {used} node(s)", flush=True)
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    print(f"\n{cpu}, {os.cpu_count()} cores; 4 tiny points, each node 1 CPU")
    print("| cluster | wall s (each repeat) | median |\n|---|---|---|")
    for nodes, seconds in times.items():
        print(f"| {nodes} node(s) | {', '.join(f'{s:.1f}' for s in seconds)} | {statistics.median(seconds):.1f} |")
    print(f"two nodes / one: {statistics.median(times[2]) / statistics.median(times[1]):.2f}")
    # On one node the points take turns to fetch: the first fetches the baseline into the
    # node's cache, the others find it there.
    for r, fetched in enumerate(fetches, start=1):
        print(f"repeat {r}, one node, each point's fetch: " + ", ".join(f"{n} files in {s:.1f} s" for n, s in fetched))


if __name__ == "__main__":
    main()
