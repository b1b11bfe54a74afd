"""How solid is each verdict? The seed-dependent claims judged again on fresh seeds.

The ``robustness`` stage trains N more autoencoders and N more VAEs (the study's recipes, one
batched model per kind) and applies each claim's own rule, the function in ``verdicts`` that
decides the report's verdict, to every fresh seed: per seed for the claims the study judged
per run, per disjoint triple of seeds for the two that speak of three runs, per autoencoder
and VAE of the same seed for the claims that compare the two. A claim's share of seeds where
it holds gets a Wilson 95% interval and a label, after Bouthillier et al. (MLSys 2021):

- *solid*: the interval lies above 0.5 and reaches 0.75: the claim holds for this recipe;
- *solid against*: the interval lies below 0.5: it does not;
- *fragile*: anything else: which way the study's three runs fall is a coin;
- *exact*: PCA's determinism, which no seed touches;
- *one draw*: the sweep's claims, which rest on one sweep (19 models; not re-seeded).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from scipy.stats import binom, binomtest

from stages.lib import verdicts
from stages.lib.verdicts import Verdict

CONFIDENCE = 0.95
SOLID_ABOVE, SOLID_REACHES = 0.5, 0.75  # Bouthillier et al.'s rule for "A beats B"
STUDY_RUNS = 3  # the study trained three autoencoders
# What the sweep's claims rest on, and PCA's determinism: labels without a share.
ONE_DRAW = (
    "ae_below_pca_at_every_size",
    "ae_error_falls_faster_at_small_sizes",
    "ae_elbow_near_10",
    "pca_elbow_near_15",
    "pca_elbow_near_10",
)
EXACT = ("pca_deterministic",)
LABELS = ("solid", "solid against", "fragile", "exact", "one draw")


@dataclass(frozen=True)
class SeedRun:
    """One fresh seed's autoencoder and VAE, measured as the study's stages measure theirs; each
    dict has the shape of the study's metrics file of that name."""

    seed: int
    ae: dict  # metrics/ae/seed_<s>.json: test_mse, silhouette, knn_accuracy, code_std
    vae: dict  # metrics/vae.json's latent separation: silhouette, knn_accuracy, code_std
    judge: dict  # metrics/judge.json: reconstructions (ae_seed_<s>, vae, pca) and grids (ae, vae, study's)
    samples: dict  # metrics/samples.json: vae_sets, class_share_gap


def holds(v: Verdict) -> bool:
    """A verdict on one seed (or one triple) holds: in its one run, or outright."""
    return v.outcome == v.runs if v.runs is not None else bool(v.outcome)


# Each claim's rule on one fresh seed: the verdict function of the report, on that seed's run.
# ``pca``: metrics/pca.json, which no seed changes.
PER_SEED: tuple[Callable[[SeedRun, dict], Verdict], ...] = (
    lambda r, pca: verdicts.recognisable_but_blurred([r.seed], r.judge),
    lambda r, pca: verdicts.ae_separates_better([r.seed], {r.seed: r.ae}, pca),
    lambda r, pca: verdicts.ae_reconstructs_better([r.seed], {r.seed: r.ae}, pca),
    lambda r, pca: verdicts.pca_blurrier([r.seed], r.judge),
    lambda r, pca: verdicts.ae_grid_clearer(r.judge),
    lambda r, pca: verdicts.vae_grid_more_varied(r.judge),
    lambda r, pca: verdicts.vae_grid_smoother(r.judge),
    lambda r, pca: verdicts.vae_more_compact([r.seed], {r.seed: r.ae}, r.vae),
    lambda r, pca: verdicts.vae_closer_to_prior([r.seed], r.judge),
    lambda r, pca: verdicts.vae_separates_better([r.seed], {r.seed: r.ae}, r.vae),
    lambda r, pca: verdicts.samples_recognisable(r.samples),
    lambda r, pca: verdicts.samples_varied(r.samples),
    lambda r, pca: verdicts.samples_differ(r.samples),
    lambda r, pca: verdicts.sample_quality_stable(r.samples),
)
# The claims about three runs, on each disjoint triple of fresh seeds.
PER_TRIPLE: tuple[Callable[[Sequence[int], dict], Verdict], ...] = (
    verdicts.runs_differ,
    verdicts.spread_matches_separation,
)


def outcomes(runs: Sequence[SeedRun], pca: dict) -> dict[str, dict[str, int]]:
    """Per claim, in how many fresh seeds (or triples) it holds: {key: {holds, of}}."""
    counts: dict[str, dict[str, int]] = {}

    def add(v: Verdict) -> None:
        count = counts.setdefault(v.key, {"holds": 0, "of": 0})
        count["holds"] += holds(v)
        count["of"] += 1

    for run in runs:
        for rule in PER_SEED:
            add(rule(run, pca))
    for start in range(0, len(runs) - STUDY_RUNS + 1, STUDY_RUNS):
        triple = runs[start : start + STUDY_RUNS]
        for rule in PER_TRIPLE:
            add(rule([r.seed for r in triple], {r.seed: r.ae for r in triple}))
    return counts


def wilson(successes: int, trials: int) -> tuple[float, float]:
    """The Wilson score interval (no continuity correction) of a share, two-sided 95%."""
    ci = binomtest(successes, trials).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return float(ci.low), float(ci.high)


def label(low: float, high: float) -> str:
    if low > SOLID_ABOVE and high >= SOLID_REACHES:
        return "solid"
    if high < SOLID_ABOVE:
        return "solid against"
    return "fragile"


def study_chance(share: float, outcome: bool | int, runs: int | None) -> float:
    """The chance that the study's procedure prints this outcome, if each of its runs holds
    with probability ``share`` independently: k of 3 runs, or one yes-or-no."""
    if runs is None:
        return share if outcome else 1.0 - share
    return float(binom.pmf(int(outcome), runs, share))


@dataclass(frozen=True)
class Robustness:
    """One claim's standing over fresh seeds."""

    label: str
    holds: int = 0
    of: int = 0
    low: float = 0.0
    high: float = 0.0
    chance: float | None = None  # that the study's procedure prints the report's verdict

    @property
    def share(self) -> float:
        return self.holds / self.of if self.of else 0.0


def standing(key: str, counts: dict[str, dict[str, int]]) -> Robustness | None:
    """Claim ``key``'s standing from the fresh seeds' ``counts`` (metrics/robustness.json's
    ``claims``); None when no fresh seed judged it."""
    if key in EXACT:
        return Robustness("exact")
    if key in ONE_DRAW:
        return Robustness("one draw")
    count = counts.get(key)
    if not count or not count["of"]:
        return None
    low, high = wilson(count["holds"], count["of"])
    return Robustness(label(low, high), count["holds"], count["of"], low, high)


def judge(v: Verdict, counts: dict[str, dict[str, int]]) -> Robustness | None:
    """:func:`standing`, with the chance that the study's procedure prints verdict ``v``."""
    r = standing(v.key, counts)
    if r is None or not r.of:
        return r
    return dataclasses.replace(r, chance=study_chance(r.share, v.outcome, v.runs))


def labels(counts: dict[str, dict[str, int]], keys: Sequence[str]) -> dict[str, str]:
    """Each claim's label, "not measured" where no fresh seed judged it."""
    return {key: r.label if (r := standing(key, counts)) else "not measured" for key in keys}


def label_counts(judged: Sequence[Robustness | None]) -> dict[str, int]:
    """How many verdicts carry each label: for metrics/study.json."""
    names = [r.label if r else "not measured" for r in judged]
    return {name.replace(" ", "_"): names.count(name) for name in (*LABELS, "not measured")}
