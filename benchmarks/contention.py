"""Two trainings at once on one machine: what `dvc queue start -j 2` and a campaign's points do.

Each training is a process of its own, as a stage is: ``runtime.setup`` gives it as many
threads as it may use cores. The layouts, each run ``--rounds`` times, interleaved:

- **alone**: one training, every core;
- **together, every core each**: two at once, each with every core (and as many threads);
- **together, cores split**: two at once, each pinned to its own half of the cores;
- **passive wait**: as named, with ``OMP_WAIT_POLICY=PASSIVE``: OpenMP's threads sleep as soon
  as they wait, where by default they first spin (GNU libgomp, which torch's CPU wheels use).

Each training times ``--epochs`` epochs of the study's autoencoder (``train.fit`` on the
training set at batch 128, :func:`benchmarks.epoch.trainer_epoch`) after a warm-up epoch.
Reported per layout: seconds per epoch (medians), and its throughput (epochs per second of the
machine) against one training alone.

    python -m benchmarks.contention [--epochs 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

PASSIVE = {"OMP_WAIT_POLICY": "PASSIVE"}  # OpenMP's idle threads sleep at once instead of spinning first
# layout: (where each training runs: every core or a half of them; extra environment)
LAYOUTS = {
    "alone": (["all"], {}),
    "alone, passive wait": (["all"], PASSIVE),
    "together, every core each": (["all", "all"], {}),
    "together, every core each, passive wait": (["all", "all"], PASSIVE),
    "together, cores split": (["first half", "second half"], {}),
}


def train(epochs: int) -> None:
    """The worker: a warm-up epoch, then ``epochs`` timed ones; prints seconds per epoch."""
    import torch

    from benchmarks.common import require_data, timed
    from benchmarks.epoch import trainer_epoch
    from stages.lib.data import load_split
    from stages.lib.runtime import seed_everything, setup

    device = setup("cpu")
    seed_everything(0)
    data = require_data()
    epoch = trainer_epoch(load_split(data, "train", device), load_split(data, "test", device), "fp32", device)
    epoch()
    seconds = sum(timed(epoch, device) for _ in range(epochs))
    print(f"{seconds / epochs:.3f} {torch.get_num_threads()}")


def launch(epochs: int, cores: list[int], env: dict[str, str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "benchmarks.contention", "--worker", "--epochs", str(epochs)]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, **env},
        preexec_fn=lambda: os.sched_setaffinity(0, cores),
    )  # fmt: skip


def run(layout: str, epochs: int, cores: list[int]) -> list[tuple[float, int]]:
    """Seconds per epoch and threads of each training of one layout."""
    pins, env = LAYOUTS[layout]
    half = len(cores) // 2
    where = {"all": cores, "first half": cores[:half], "second half": cores[half:]}
    workers = [launch(epochs, where[pin], env) for pin in pins]
    results = []
    for worker in workers:
        out, _ = worker.communicate()
        if worker.returncode:
            raise SystemExit(f"a training failed (exit {worker.returncode})")
        seconds, threads = out.split()
        results.append((float(seconds), int(threads)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return train(args.epochs)
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise SystemExit("needs at least 2 cores")
    seen: dict[str, list[tuple[float, int]]] = {layout: [] for layout in LAYOUTS}
    for round_ in range(args.rounds):
        for layout in LAYOUTS:
            results = run(layout, args.epochs, cores)
            seen[layout] += results
            print(f"round {round_ + 1}, {layout}: s/epoch, threads {results}", flush=True)
    alone = statistics.median(s for s, _ in seen["alone"])
    print(f"\n{len(cores)} cores, {args.epochs} epochs per training after a warm-up, {args.rounds} rounds")
    print("| layout | trainings | threads each | s/epoch (median) | throughput vs alone |\n|---|---|---|---|---|")
    for layout in LAYOUTS:
        times, threads = [s for s, _ in seen[layout]], {t for _, t in seen[layout]}
        count = len(LAYOUTS[layout][0])
        median = statistics.median(times)
        print(f"| {layout} | {count} | {'/'.join(map(str, sorted(threads)))} | {median:.2f} | "
              f"{count * alone / median:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
