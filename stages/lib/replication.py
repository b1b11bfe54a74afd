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
from functools import cache

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


def welch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Welch's two-sided p-value, row by row, of ``a`` (rows, m) against ``b`` (rows, n); a row
    with no spread in either pool is 1 where their values are equal, else 0."""
    with warnings.catch_warnings():  # near-constant counts: the test is still defined
        warnings.simplefilter("ignore", RuntimeWarning)
        p = np.asarray(ttest_ind(a, b, axis=1, equal_var=False).pvalue, dtype=float)
    flat = (np.ptp(a, axis=1) == 0) & (np.ptp(b, axis=1) == 0)
    return np.where(flat, (a[:, 0] == b[:, 0]).astype(float), p)


@cache
def fisher(held_a: int, size_a: int, held_b: int, size_b: int) -> float:
    """Fisher's exact two-sided p-value of two shares (few distinct tables recur: cached)."""
    return float(fisher_exact([[held_a, size_a - held_a], [held_b, size_b - held_b]]).pvalue)


def compare(
    reference: pd.DataFrame, now: pd.DataFrame, pca: dict, study_runs: int, budget: float = FALSE_ALARMS
) -> list[Test]:
    """Every test of ``now``'s pool against ``reference``'s (both per-model tables)."""
    before, after = _measures(reference), _measures(now)
    shared = [k for k in before if k in after]
    tests = []
    for name in shared:
        a, b = before[name], after[name]
        p = float(welch(a[None], b[None])[0])
        tests.append(Test(name, float(a.mean()), float(b.mean()), p, budget / 2 / max(len(shared), 1)))
    shares_before, shares_after = _shares(reference, pca, study_runs), _shares(now, pca, study_runs)
    for key, a in shares_before.items():
        b = shares_after[key]
        p = fisher(int(a.sum()), a.size, int(b.sum()), b.size)
        tests.append(Test(key, float(a.mean()), float(b.mean()), p, budget / 2 / len(shares_before)))
    return tests


def halves(kinds: np.ndarray, splits: int) -> np.ndarray:
    """(splits, models): each split's first half, half of each kind's models (a fixed seed)."""
    rng = np.random.default_rng(0)
    out = np.zeros((splits, kinds.size), dtype=bool)
    for split in out:
        for kind in np.unique(kinds):
            members = np.flatnonzero(kinds == kind)
            split[rng.choice(members, len(members) // 2, replace=False)] = True
    return out


def false_alarms(table: pd.DataFrame, pca: dict, study_runs: int, splits: int = SPLITS) -> dict[str, int]:
    """How often :func:`compare` fails between two disjoint halves of one pool: two sets of
    seeds of one recipe, so every failure is a false alarm. Every split at once: a model's
    measures and its claims' outcomes are its own, whichever half it is in."""
    kinds = table["kind"].to_numpy()
    first = halves(kinds, splits)
    pool = robustness.Pool.of(table, pca, study_runs)
    outcomes = {"ae": pool.ae, "vae": pool.vae}
    p_measures, tested, p_shares = [], [], []  # one row of splits per test
    for kind in KINDS:
        rows = np.flatnonzero(kinds == kind)
        # Each split's two halves as positions among this kind's models: the first half, then the rest.
        order = np.argsort(~first[:, rows], axis=1, kind="stable")
        size_a = rows.size // 2
        for column in (c for c in table.columns if c not in IDENTITY):
            values = table[column].to_numpy(dtype=float)[rows]
            if np.isnan(values).all():
                continue
            if np.isnan(values).any():  # some models lack it: each half keeps what it has
                p, ok = _split_by_split(values, order, size_a)
            elif min(size_a, rows.size - size_a) > 1:  # a half of one model has no spread to test
                p, ok = welch(values[order[:, :size_a]], values[order[:, size_a:]]), np.ones(splits, dtype=bool)
            else:
                continue
            p_measures.append(p)
            tested.append(ok)
        for held in outcomes.get(kind, {}).values():
            held_a = held[order[:, :size_a]].sum(axis=1)
            total = int(held.sum())
            p_shares.append([fisher(int(h), size_a, total - int(h), rows.size - size_a) for h in held_a])
    tested_m = np.array(tested)
    measure_level = FALSE_ALARMS / 2 / np.maximum(tested_m.sum(axis=0), 1)
    fails = ((np.array(p_measures) < measure_level) & tested_m).any(axis=0)
    fails |= (np.array(p_shares) < FALSE_ALARMS / 2 / len(p_shares)).any(axis=0)
    return {"splits": splits, "false_alarms": int(fails.sum())}


def _split_by_split(values: np.ndarray, order: np.ndarray, size_a: int) -> tuple[np.ndarray, np.ndarray]:
    """A measure some models lack: each split's halves without them, tested where both keep two."""
    p, ok = np.ones(len(order)), np.zeros(len(order), dtype=bool)
    for i, r in enumerate(order):  # positions among the kind's models, as `values`
        a, b = values[r[:size_a]], values[r[size_a:]]
        a, b = a[~np.isnan(a)], b[~np.isnan(b)]
        if a.size > 1 and b.size > 1:
            p[i], ok[i] = welch(a[None], b[None])[0], True
    return p, ok
