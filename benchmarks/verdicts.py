"""What the pooled verdicts cost: ``robustness.analyse`` (every rule on every draw of the pool,
the study's procedure as a distribution) and ``replication.false_alarms`` (the re-seeded check
between halves of the pool) on the committed per-model table, and on a pool the size of 30 fresh
seeds made by resampling its rows; beside it, the robustness layer's training time is in the
stage timings (benchmarks.study).

    python -m benchmarks.verdicts [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from stages.lib import io, replication, robustness

TABLE = Path("metrics/models.csv")


def pool_of(table: pd.DataFrame, fresh: int) -> pd.DataFrame:
    """The study's rows and ``fresh`` fresh rows of each kind, drawn with replacement (fixed seed)."""
    study = table[table["source"] == "study"]
    rows = [study]
    for kind in ("ae", "vae"):
        candidates = table[(table["kind"] == kind) & (table["source"] == "fresh")]
        rows.append(candidates.sample(fresh, replace=True, random_state=0))
    return pd.concat(rows, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    table = pd.read_csv(TABLE)
    judge = io.read_json(Path("metrics/judge.json"))
    pca = {**io.read_json(Path("metrics/pca.json")), "reconstruction": judge["reconstructions"]["pca"]}
    aes = table[table["kind"] == "ae"]
    runs, fresh = int((aes["source"] == "study").sum()), int((aes["source"] == "fresh").sum())
    for size in (fresh, 30):
        pool = pool_of(table, size)
        analyse, halvings = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            robustness.analyse(pool, pca, runs)
            analyse.append(time.perf_counter() - start)
            start = time.perf_counter()
            alarms = replication.false_alarms(pool, pca, runs)
            halvings.append(time.perf_counter() - start)
        print(
            f"{size} fresh seeds ({len(pool)} models): analyse {min(analyse):.2f} s, the re-seeded check's "
            f"false alarms {min(halvings):.2f} s (best of {args.repeats}): {alarms['false_alarms']} of "
            f"{alarms['splits']} halvings of the pool (out of sample)"
        )


if __name__ == "__main__":
    main()
