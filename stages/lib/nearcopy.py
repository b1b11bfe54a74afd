"""Same seeds, another machine: is this run a near-copy of the reference?

A rerun with the study's seeds on another CPU trains the same models through other rounding:
each model lands near its own counterpart in the reference, not anywhere in the seed-to-seed
spread. So every measure of every model (the per-model table's rows: the study's autoencoders
and VAE, the fresh ones, the classifiers; the sweep's train and test errors at every size; PCA)
is compared with the same model's in the reference, against a tolerance made of **measured
arithmetic noise**: the differences between two runs of the same seeds on two arithmetic paths
(:func:`noise`, recorded in the reference by ``make noise``).

Two limits per group of measures (one measure of one kind of model), each with a t-quantile for
the number of noise differences (of every measurement of the group's largest noise's size:
:func:`combined`) and a share of the check's false-alarm budget (Bonferroni):

- **per model**: one model's difference may not exceed ``t * rms`` (a single model gone wrong);
- **the group's mean**: the mean difference over the group's k models may not exceed
  ``t * rms / sqrt(k)`` (a regression that moves every model a little, as a recipe change does);
  ``t * rms`` where the measure is read through the study's classifier, which every model shares
  and another CPU kind trains to other weights, so that its models move together; for a count,
  which moves by rare whole steps, the net steps its measured moves make likely (:func:`net_steps`);
- **the study's mean**, where the study has more than one model of the group's kind but not all
  of them (its three autoencoders of thirteen): the same on its models alone, but for counts. They
  are trained by a stage of their own (train_ae), so a slip in its script moves them and no fresh
  model, a move the mean of all would dilute (:func:`mean_counts`).

Verdicts follow from their measures: a per-draw outcome (one model's rule, one pair's, one set
of three) may flip between the reference and the rerun only where the rerun's moves, held to
the tolerance box around the reference, still flip it (:func:`flips`): the reference sat within
tolerance of the rule's threshold. Any other flip fails, naming the claim and its draw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import betabinom, binom
from scipy.stats import f as fisher
from scipy.stats import t as student

from stages.lib import robustness

FALSE_ALARMS = 0.05  # the check's budget: half for single models, half for the means
STUDY_MEAN = "the study's "  # names the mean of a group over the study's models alone
# Two measurements of a group's noise are of one size unless an F-test at this level says the
# smaller is smaller: the t-quantile then counts both's differences (:func:`combined`).
CONSISTENT = 0.05
IDENTITY = ("kind", "source", "seed")
# The sweep's errors span a factor of four over the sizes: their noise is relative.
SWEEP_MEASURES = ("ae_train", "ae_test", "pca_train", "pca_test")
PCA_MEASURES = ("test_mse", "silhouette")
CLASSIFIER_SCORED = ("recon_classifier_accuracy",)
RESOLUTION = {"distinct_classes": 1.0}  # a count moves by whole steps: a step is its least tolerance
# A move below this share of the value is float64 summation order (a transposed grid moved its
# sharpness by 6e-17 of it on one CPU kind, 0 on another), not a change; the least measured noise
# (PCA's sweep errors, 3e-8) is 30 times larger. Only tolerances of all but zero (the tiny
# pipeline's) ever come down to it.
ROUNDING = 1e-9


SCORED_BY_THE_CLASSIFIER = ("samples_", "set", "gap_max", "confidence", "distinct_classes", "class_entropy",
                            "class_change_rate", "recon_classifier_accuracy")  # fmt: skip


def shared_instrument(group: str) -> bool:
    """Whether a group's measure is read through the study's classifier, shared by every model."""
    measure = group.split(": ", 1)[-1]
    return measure.startswith(SCORED_BY_THE_CLASSIFIER) or any(m in measure for m in SCORED_BY_THE_CLASSIFIER[3:])


RELATIVE_PCA = "PCA (relative)"


def pca_group(measure: str) -> str:
    return f"PCA: {measure}" if measure in CLASSIFIER_SCORED else RELATIVE_PCA


STUDY_MODEL = "the study"  # how a model's name (:func:`model_name`) says it is one of the study's


def model_name(kind: str, source: str, seed: int) -> str:
    return f"{STUDY_MODEL if source == 'study' else 'fresh'} {kind} seed {seed}"


def _of_the_study(rows: pd.DataFrame) -> np.ndarray:
    """Which rows of :meth:`Run.long` (or :func:`differences`) are the study's models."""
    return rows.index.get_level_values("model").str.startswith(f"{STUDY_MODEL} ")


def group_of(mean: str) -> str:
    """The group a mean of :func:`mean_counts` is taken over."""
    return mean.removeprefix(STUDY_MEAN)


def is_whole_group(mean: str) -> bool:
    """Whether a mean of :func:`mean_counts` is over all of its group's models."""
    return group_of(mean) == mean


def step_of(group: str) -> float:
    """The step a group's measure moves by: a count's (:data:`RESOLUTION`), else 0."""
    return max((v for name, v in RESOLUTION.items() if group.endswith(name)), default=0.0)


def is_count(group: str) -> bool:
    """Whether a group's measure is a count, which moves by whole steps."""
    return step_of(group) > 0


def mean_counts(rows: pd.DataFrame) -> dict[str, int]:
    """Every mean the check compares, with its number of models: each group's over all its models,
    and the study's over its own where it has more than one of the group's models but not all.
    ``rows``: :meth:`Run.long` or :func:`differences`. A count has no study's mean: over three
    models it moves in thirds of a step, and two of them moving one step each (a grid one class
    richer, as faithful reruns do) would fail it."""
    out = {}
    for group, of_group in rows.groupby("group", sort=True):
        out[group] = len(of_group)
        study = int(_of_the_study(of_group).sum())
        if 1 < study < len(of_group) and not is_count(group):
            out[STUDY_MEAN + group] = study
    return out


def mean_rows(rows: pd.DataFrame, mean: str) -> pd.DataFrame:
    """The rows a mean of :func:`mean_counts` is taken over."""
    of_group = rows[rows["group"] == group_of(mean)]
    return of_group[_of_the_study(of_group)] if mean.startswith(STUDY_MEAN) else of_group


@dataclass(frozen=True)
class Run:
    """One run's outputs as the check reads them: the per-model table (metrics/models.csv), the
    sweep (plots/sweep.csv) and PCA (metrics/pca.json with its ``reconstruction`` measures)."""

    table: pd.DataFrame
    sweep: pd.DataFrame
    pca: dict

    def long(self) -> pd.DataFrame:
        """Every measure of every model, one row each: model, measure, group, value, relative."""
        rows = []
        for _, r in self.table.iterrows():
            name = model_name(r["kind"], r["source"], int(r["seed"]))
            for column, value in r.items():
                if column in IDENTITY or pd.isna(value):
                    continue
                rows.append((name, column, f"{r['kind']}: {column}", float(value), False))
        for _, r in self.sweep.iterrows():
            for column in SWEEP_MEASURES:
                rows.append((f"sweep latent {int(r['latent'])}", column, f"sweep: {column}", float(r[column]), True))
        pca = {k: self.pca[k] for k in PCA_MEASURES if k in self.pca} | {
            f"recon_{k}": v for k, v in self.pca.get("reconstruction", {}).items()
        }
        # PCA's own arithmetic is float64 and all but exact; the classifier's reading of its
        # reconstructions moves with the classifier alone, and measured further than the
        # autoencoders' reading (it recognises fewer of PCA's blurred digits: docs/reproduction.md):
        # two groups, the second with noise of its own, in the measure's units.
        rows += [("PCA", k, pca_group(k), float(v), k not in CLASSIFIER_SCORED) for k, v in pca.items()]
        return pd.DataFrame(rows, columns=["model", "measure", "group", "value", "relative"]).set_index(
            ["model", "measure"]
        )


def differences(reference: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """``other``'s move from ``reference`` per model and measure (both :meth:`Run.long`): the
    difference, relative to the reference's value in the relative groups; NaN where ``other``
    lacks a measure the reference has."""
    joined = reference.join(other[["value"]].rename(columns={"value": "now"}), how="left")
    d = joined["now"] - joined["value"]
    scale = np.where(joined["relative"], np.abs(joined["value"]).replace(0, 1.0), 1.0)
    return joined.assign(difference=d / scale)


def noise(reference: pd.DataFrame, other: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The arithmetic noise of each group: the root mean square of the differences between two
    runs of the same seeds (``other`` against ``reference``), and how many there were. Measures
    that ``other`` lacks (a run from before a measure was added) are left out."""
    d = differences(reference, other).dropna(subset=["difference"])
    if d.empty:
        raise ValueError("the other run shares no measured model with the reference: not the same seeds")
    out = {}
    for group, rows in d.groupby("group", sort=True):
        e = rows["difference"].to_numpy()
        out[group] = {
            "n": int(e.size),
            "rms": float(np.sqrt(np.mean(e**2))),
            "relative": bool(rows["relative"].iloc[0]),
        }
    return out


def combined(sources: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Several measurements of the noise (other paths, other CPU kinds) as one, per group: the
    largest root mean square, so that every situation measured passes, with the differences of
    every source whose noise is of that size as its ``n``: the sources a one-sided F-test at
    :data:`CONSISTENT` does not find smaller. A source of smaller noise (another CPU kind's
    classifier moves the sample sets' Frechet distances three times as far as a forced path
    does) says nothing about how well the larger is known, and is left out of its ``n``."""
    out: dict[str, dict[str, Any]] = {}
    for group in sorted({g for groups in sources for g in groups}):
        measured = [groups[group] for groups in sources if group in groups]
        largest = max(measured, key=lambda g: g["rms"])
        alike = [g for g in measured if _alike(largest, g)]
        out[group] = {**largest, "n": sum(g["n"] for g in alike), "sources": len(alike)}
    return out


def _alike(largest: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether ``other``'s noise is consistent with the ``largest``'s: n * rms^2 / sigma^2 is
    chi-square on n differences, so the ratio of two mean squares of one sigma is F-distributed."""
    if largest["rms"] == other["rms"]:
        return True
    if other["rms"] == 0:
        return False
    ratio = (largest["rms"] / other["rms"]) ** 2
    return float(fisher.sf(ratio, largest["n"], other["n"])) > CONSISTENT


@dataclass(frozen=True)
class Limits:
    """A group's tolerance: ``model`` for one model's difference, ``mean`` for the mean of its ``k``."""

    rms: float
    n: int
    k: int
    model: float
    mean: float


def limits(noise_of: dict[str, dict[str, Any]], counts: dict[str, int], budget: float = FALSE_ALARMS) -> dict:
    """Each mean's :class:`Limits` (``counts``: :func:`mean_counts`, or a group's number of models)
    from its group's measured noise: a two-sided t-quantile on the noise's ``n`` differences at
    its share of the budget (half over every single comparison, half over the means); never
    below a measure's resolution (a count's one step)."""
    singles, means = comparisons(counts)
    out = {}
    for mean, k in counts.items():
        group = group_of(mean)
        n, rms = noise_of[group]["n"], noise_of[group]["rms"]
        step = step_of(group)
        t_model, t_mean = quantile(budget, singles, n), quantile(budget, means, n)
        # Measures read through the one classifier move together when it moves (another CPU kind
        # trains it to other weights): their k differences are not independent, so their mean
        # gets no sqrt(k).
        shared = 1 if shared_instrument(group) else math.sqrt(k)
        if is_count(group):
            # at least one step of one model, which the model's own limit lets it move
            mean_limit = step * max(net_steps(noise_of[group], k, budget / 2 / means), 1) / k
        else:
            mean_limit = t_mean * rms / shared
        out[mean] = Limits(rms, n, k, max(t_model * rms, step), mean_limit)
    return out


def steps_measured(noise: dict[str, Any]) -> int:
    """A count's measured moves (:func:`noise`'s n and rms), in one-step moves: its differences'
    sum of squares, where a move of two steps counts four."""
    return round(noise["n"] * noise["rms"] ** 2)


def net_steps(noise: dict[str, Any], k: int, alpha: float) -> int:
    """The most a count may move over ``k`` models, in net steps up or down, at a chance of at
    most ``alpha`` of moving further. Each model's count moves one step, up or down alike, at a
    chance no larger than the measured moves allow: the number that move follows the Jeffreys
    posterior on them (beta-binomial; a measured 0 of n is no chance of 0), and the net of those
    that move is a sum of fair signs. A t-quantile on the rms would take a rare whole step for a
    normal: it gives a mean over k a floor of one step over k where no measurement saw a move,
    which two models one step the same way exceed, and a whole step where one measurement saw
    one, which every model one step the same way does not. The models' moves are taken as
    independent with fair signs, which is assumed, not measured: no measurement saw two of one
    count's models move (as independent moves would be seen), and none recorded a move's sign.
    Were they one-signed, the net beyond these limits would have 3 to 16 times their chance."""
    measured = steps_measured(noise)
    moving = np.arange(k + 1)
    movers = betabinom(k, measured + 0.5, noise["n"] - measured + 0.5).pmf(moving)
    net = moving[:, None]  # of m models moving, the net of their signs is beyond `net` both ways
    further = (movers * 2 * binom.sf((moving + net) // 2, moving, 0.5)).sum(axis=1)
    return int(np.argmax(further <= alpha))  # beyond k steps: none


def comparisons(counts: dict[str, int]) -> tuple[int, int]:
    """How many single models and how many means share the budget (``counts``: :func:`mean_counts`):
    every model of every group once, and every mean."""
    return sum(k for mean, k in counts.items() if is_whole_group(mean)), len(counts)


def quantile(budget: float, comparisons: int, n: int) -> float:
    """The two-sided t-quantile on ``n`` differences at the share of half the ``budget`` that each
    of ``comparisons`` gets (Bonferroni): half for single models, half for the means."""
    return float(student.isf(budget / 2 / comparisons / 2, n))


def budget_at(t: float, comparisons: int, n: int) -> float:
    """The budget whose :func:`quantile` is ``t``: the share of false alarms a check would accept
    for its tolerance to come down to a move of ``t`` times the noise."""
    return 2 * 2 * comparisons * float(student.sf(t, n))


def units(move: float, limit: float) -> float:
    """A move in units of its limit: beyond 1 fails (NaN, a measure gone, fails too)."""
    if move == 0:
        return 0.0
    return abs(move) / limit if limit > 0 else math.inf


@dataclass(frozen=True)
class Move:
    model: str
    measure: str
    group: str
    reference: float
    now: float
    difference: float  # relative in the relative groups
    limit: float

    @property
    def units(self) -> float:
        return units(self.difference, self.limit)


@dataclass(frozen=True)
class GroupMove:
    group: str  # the mean's name (:func:`mean_counts`): a group, or the study's models of one
    mean: float
    limit: float
    k: int

    @property
    def units(self) -> float:
        return units(self.mean, self.limit)


@dataclass(frozen=True)
class Result:
    moves: list[Move]  # every model's every measure
    groups: list[GroupMove]
    flips: list[Flip]

    @property
    def failing_moves(self) -> list[Move]:
        return [m for m in self.moves if not m.units <= 1]

    @property
    def failing_groups(self) -> list[GroupMove]:
        return [g for g in self.groups if not g.units <= 1]

    @property
    def failing_flips(self) -> list[Flip]:
        return [f for f in self.flips if not f.near_threshold]

    @property
    def passes(self) -> bool:
        return not (self.failing_moves or self.failing_groups or self.failing_flips)


def compare(
    reference: Run, now: Run, noise_of: dict[str, dict[str, Any]], study_runs: int, budget: float = FALSE_ALARMS
) -> Result:
    """``now`` against ``reference``, model by model, with the tolerances of ``noise_of`` at a
    false-alarm ``budget``."""
    d = differences(reference.long(), now.long())
    counts = mean_counts(d)
    missing = sorted({group_of(m) for m in counts} - set(noise_of))
    if missing:
        raise ValueError(f"the reference's noise has no entry for {', '.join(missing)}: run `make noise`")
    lim = limits(noise_of, counts, budget)
    # The rounding floor in the difference's units: relative groups' differences are relative.
    d = d.assign(floor=ROUNDING * np.where(d["relative"], 1.0, np.abs(d["value"])))
    moves = [
        Move(model, measure, r["group"], r["value"], r["now"], r["difference"], max(lim[r["group"]].model, r["floor"]))
        for (model, measure), r in d.iterrows()
    ]
    groups = []
    for mean in counts:
        rows = mean_rows(d, mean)
        limit = max(lim[mean].mean, float(rows["floor"].mean()))
        groups.append(GroupMove(mean, float(rows["difference"].mean()), limit, lim[mean].k))
    box = clipped(reference, now, d, lim)
    return Result(moves, groups, flips(reference, now, box, study_runs))


def clipped(reference: Run, now: Run, d: pd.DataFrame, lim: dict[str, Limits]) -> Run:
    """``now`` with every model's move held to its tolerance around the reference: the nearest
    point of the tolerance box. Rules read this to tell a near-threshold flip from a real one."""
    limit = d["group"].map(lambda g: lim[g].model)
    held = d.assign(held=np.clip(d["difference"].fillna(0.0), -limit, limit)).reset_index()
    wide = held.pivot(index="model", columns="measure", values="held")
    names = [model_name(k, s, int(seed)) for k, s, seed in reference.table[list(IDENTITY)].itertuples(index=False)]
    columns = [c for c in reference.table.columns if c not in IDENTITY]
    moves = wide.reindex(index=names, columns=columns).fillna(0.0).to_numpy()
    table = reference.table.astype(dict.fromkeys(columns, float))
    table[columns] = table[columns].to_numpy() + moves
    pca = {**reference.pca, "reconstruction": dict(reference.pca.get("reconstruction", {}))}
    for k in PCA_MEASURES:
        pca[k] = _held(reference.pca[k], now.pca[k], lim.get(pca_group(k)))
    for k, v in reference.pca.get("reconstruction", {}).items():
        group = pca_group(f"recon_{k}")
        pca["reconstruction"][k] = _held(
            v, now.pca["reconstruction"][k], lim.get(group), relative=group == RELATIVE_PCA
        )
    return Run(table, reference.sweep, pca)


def _held(ref: float, now: float, group: Limits | None, relative: bool = True) -> float:
    limit = group.model * (abs(ref) if relative else 1.0) if group else 0.0
    return ref + float(np.clip(now - ref, -limit, limit))


@dataclass(frozen=True)
class Flip:
    """One draw's outcome of one claim, changed between the reference and the rerun."""

    claim: str
    draw: str  # the models it read
    reference: bool
    now: bool
    near_threshold: bool  # the tolerance box around the reference holds the same flip


def flips(reference: Run, now: Run, box: Run, study_runs: int) -> list[Flip]:
    """Every draw whose outcome differs between ``reference`` and ``now``, each judged against
    ``box`` (:func:`clipped`): a flip is near the threshold when the moves held to tolerance
    flip it too."""
    pools = [robustness.Pool.of(r.table, r.pca, study_runs) for r in (reference, now, box)]
    names = _draw_names(reference.table, study_runs)
    out = []
    for key, design in robustness.DESIGNS.items():
        before, after, held = (p.draws(key) for p in pools)
        for i in np.flatnonzero(before != after):
            out.append(Flip(key, names[design][i], bool(before[i]), bool(after[i]), bool(held[i] == after[i])))
    return out


def _draw_names(table: pd.DataFrame, study_runs: int) -> dict[str, Sequence[str]]:
    """The models each draw of each design reads, in the order of :class:`robustness.Pool`."""

    def names(kind: str) -> list[str]:
        rows = table[table["kind"] == kind]
        return [model_name(kind, s, int(seed)) for s, seed in zip(rows["source"], rows["seed"], strict=True)]

    aes, vaes = names("ae"), names("vae")
    pairs = [f"{a} with {v}" for a in aes for v in vaes]
    return {
        "ae": aes,
        "vae": vaes,
        "one_pair": pairs,
        "vae_against_each_ae": pairs,
        "runs": [", ".join(t) for t in combinations(aes, study_runs)],
    }
