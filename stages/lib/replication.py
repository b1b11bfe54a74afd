"""Other seeds: do the conclusions replicate?

A rerun whose seeds differ from the reference's (other ``fresh.first_seed``, other study
seeds) trains other models: it cannot be a near-copy, and the question is whether its pool of
models tells the same story. Two pools are compared measure by measure and claim by claim:

- each measure of each kind of model: Welch's t-test of the two pools' means (each pool's own
  standard error), two-sided;
- each claim read per model (one autoencoder, one VAE): Fisher's exact test of the two pools'
  shares of models where it holds.

The 5% budget of false alarms is shared, half over the measures and half over the claims
(Bonferroni). Its rate out of sample is measured, not assumed (:func:`false_alarms`): the
reference's pool split in two disjoint halves of seeds, again and again, each half checked
against the other.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact, ttest_ind

from stages.lib import robustness

FALSE_ALARMS = 0.05
SPLITS = 200  # halvings of the pool for the out-of-sample false-alarm rate
KINDS = ("ae", "vae", "classifier")
IDENTITY = ("kind", "source", "seed")


@dataclass(frozen=True)
class Test:
    name: str  # "ae: test_mse" or a claim's key
    reference: float  # the reference pool's mean, or its share
    now: float
    p: float
    level: float  # the test fails below it

    @property
    def fails(self) -> bool:
        return self.p < self.level


def _measures(table: pd.DataFrame) -> dict[str, np.ndarray]:
    out = {}
    for kind in KINDS:
        rows = table[table["kind"] == kind]
        for column in rows.columns:
            values = rows[column].dropna().to_numpy(dtype=float) if column not in IDENTITY else np.array([])
            if values.size > 1:
                out[f"{kind}: {column}"] = values
    return out


def _shares(table: pd.DataFrame, pca: dict, study_runs: int) -> dict[str, np.ndarray]:
    pool = robustness.Pool.of(table, pca, study_runs)
    return {**pool.ae, **pool.vae}


def compare(
    reference: pd.DataFrame, now: pd.DataFrame, pca: dict, study_runs: int, budget: float = FALSE_ALARMS
) -> list[Test]:
    """Every test of ``now``'s pool against ``reference``'s (both per-model tables)."""
    before, after = _measures(reference), _measures(now)
    shared = [k for k in before if k in after]
    tests = []
    for name in shared:
        a, b = before[name], after[name]
        if np.ptp(a) == 0 and np.ptp(b) == 0:  # no spread in either pool: equal or not
            p = 1.0 if a[0] == b[0] else 0.0
        else:
            with warnings.catch_warnings():  # near-constant counts: the test is still defined
                warnings.simplefilter("ignore", RuntimeWarning)
                p = float(ttest_ind(a, b, equal_var=False).pvalue)
        tests.append(Test(name, float(a.mean()), float(b.mean()), p, budget / 2 / max(len(shared), 1)))
    shares_before, shares_after = _shares(reference, pca, study_runs), _shares(now, pca, study_runs)
    for key, a in shares_before.items():
        b = shares_after[key]
        table = [[int(a.sum()), int(a.size - a.sum())], [int(b.sum()), int(b.size - b.sum())]]
        p = float(fisher_exact(table).pvalue)
        tests.append(Test(key, float(a.mean()), float(b.mean()), p, budget / 2 / len(shares_before)))
    return tests


def false_alarms(table: pd.DataFrame, pca: dict, study_runs: int, splits: int = SPLITS) -> dict[str, int]:
    """How often :func:`compare` fails between two disjoint halves of one pool (a fixed seed):
    two sets of seeds of one recipe, so every failure is a false alarm."""
    rng = np.random.default_rng(0)
    kinds = table["kind"].to_numpy()
    failed = 0
    for _ in range(splits):
        half = np.zeros(len(table), dtype=bool)
        for kind in np.unique(kinds):
            members = np.flatnonzero(kinds == kind)
            half[rng.choice(members, len(members) // 2, replace=False)] = True
        a, b = table[half].reset_index(drop=True), table[~half].reset_index(drop=True)
        failed += any(t.fails for t in compare(a, b, pca, study_runs))
    return {"splits": splits, "false_alarms": failed}
