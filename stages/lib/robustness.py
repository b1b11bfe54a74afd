"""How solid is each verdict? Every model the pipeline trained, pooled, and the study's own
procedure as a distribution over the verdicts it can print.

The pool is the study's own models (its autoencoders and its VAE) and the fresh ones of the
``train_fresh`` stage, one row each in the per-model table (metrics/models.csv). Each claim's
rule, the function in ``verdicts`` that decides the report's verdict, is applied to every draw
of the models it reads: one autoencoder (claims judged per run), one VAE (its sample sets), an
autoencoder and a VAE (claims that compare the two), or three autoencoders (the claims about
three runs). Fresh autoencoders and VAEs come from separate seed streams, so every pair of the
pool is a pair of independent models.

Two readings of each claim follow from the same draws and one stated prior, Jeffreys' Beta(1/2,
1/2) on a share (1/2 a pseudo-count on each outcome):

- **Pooled**: the share of draws where the rule holds, and its 95% Jeffreys interval with the
  number of effective independent draws (``Pool.effective``: the models; for pairs, a two-way
  random-effects ANOVA of the crossed design; for sets of autoencoders, a delete-one jackknife).
  *holds* when the interval lies above 0.5 and reaches 0.75 (Bouthillier et al., MLSys 2021),
  *does not hold* when it lies below 0.5, *undetermined* otherwise.
- **The study's procedure**: the chance of each verdict it can print with three autoencoders
  and one VAE. Claims with a measure per model (a count of runs, and the runs together) are
  simulated from a normal model of the pool's measures (``simulated``), so the chance follows
  the measure's margin; the others come from the pool's share (the one VAE against one
  autoencoder: a mixture over the pool's VAEs). A verdict that can be printed never gets 0%.

``make check`` no longer reads these sets: a rerun of the same seeds is checked model by model
against measured arithmetic noise (``nearcopy``), a rerun of other seeds pool against pool
(``replication``).

PCA's determinism is *exact*; the sweep's claims rest on *one draw* (one sweep, not re-seeded).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import beta, invwishart

from stages.lib import verdicts
from stages.lib.metrics import SAMPLE_QUALITY
from stages.lib.study_code import GRID_KEY
from stages.lib.verdicts import Verdict

CONFIDENCE = 0.95
SOLID_ABOVE, SOLID_REACHES = 0.5, 0.75  # Bouthillier et al.'s rule for "A beats B"
PRIOR = 0.5  # Jeffreys: Beta(1/2, 1/2) on a share, 1/2 a pseudo-count on every printable verdict
# What the sweep's claims rest on, and PCA's determinism: labels without a share.
ONE_DRAW = (
    "ae_below_pca_at_every_size",
    "ae_error_falls_faster_at_small_sizes",
    "ae_elbow_near_10",
    "pca_elbow_near_15",
    "pca_elbow_near_10",
)
EXACT = ("pca_deterministic",)
LABELS = ("holds", "does not hold", "undetermined", "exact", "one draw")

GRID_MEASURES = (
    "sharpness_ratio",
    "confidence",
    "distinct_classes",
    "class_entropy",
    "neighbour_distance",
    "class_change_rate",
)
RECONSTRUCTION_MEASURES = ("classifier_accuracy", "sharpness_ratio", "prior_kl")
# --- the per-model table --------------------------------------------------------------------


def table_row(
    *,
    kind: str,
    seed: int,
    source: str,
    metrics: dict,
    reconstruction: dict,
    grid: dict,
    drawn: dict | None = None,
    samples: dict | None = None,
) -> dict:
    """One model's row of the per-model table, from measures in the shapes of the study's metrics
    files: ``metrics`` (metrics/ae/seed_<s>.json or metrics/vae.json), ``reconstruction`` and
    ``grid`` (metrics/judge.json's), and for a VAE its grid as the study's code drew it and its
    sample sets (metrics/samples.json's ``vae``, ``vae_sets``, ``class_share_gap``)."""
    row = {"kind": kind, "seed": seed, "source": source}
    row |= {k: metrics[k] for k in ("test_loss", "test_mse", "silhouette", "knn_accuracy") if k in metrics}
    row["mean_code_std"] = verdicts.mean_code_std(metrics)
    row |= {f"recon_{k}": reconstruction[k] for k in RECONSTRUCTION_MEASURES}
    row |= {f"grid_{k}": grid[k] for k in GRID_MEASURES}
    if drawn is not None:
        row |= {f"drawn_{k}": drawn[k] for k in GRID_MEASURES}
    if samples is not None:
        row |= {f"samples_{q}": samples["vae"][q] for q in SAMPLE_QUALITY}
        for j, scores in enumerate(samples["vae_sets"].values()):
            row |= {f"set{j}_{q}": scores[q] for q in SAMPLE_QUALITY}
        row |= {"gap_max": samples["class_share_gap"]["max"], "gap_max_z": samples["class_share_gap"]["max_z"]}
    return row


@dataclass(frozen=True)
class Model:
    """A row of the per-model table in the shapes the verdict functions read."""

    seed: int
    metrics: dict
    reconstruction: dict
    grid: dict
    drawn: dict | None
    samples: dict | None

    @classmethod
    def of(cls, row: pd.Series) -> Model:
        def part(prefix: str, keys: Sequence[str]) -> dict:
            return {k: row[f"{prefix}{k}"] for k in keys}

        metrics = {k: row[k] for k in ("test_mse", "silhouette", "knn_accuracy") if k in row}
        metrics["code_std"] = [row["mean_code_std"]]  # its mean is the value the rules read
        vae = row["kind"] == "vae"
        sets = sorted({c.split("_", 1)[0] for c in row.index if c.startswith("set") and pd.notna(row[c])})
        samples = {
            "vae_sets": {f"set_{name[3:]}": part(f"{name}_", SAMPLE_QUALITY) for name in sets},
            "class_share_gap": {"max": row["gap_max"], "max_z": row["gap_max_z"]},
        }
        return cls(
            seed=int(row["seed"]),
            metrics=metrics,
            reconstruction=part("recon_", RECONSTRUCTION_MEASURES),
            grid=part("grid_", GRID_MEASURES),
            drawn=part("drawn_", GRID_MEASURES) if vae else None,
            samples=samples if vae else None,
        )


# --- each claim's rule on the smallest draw it reads ----------------------------------------

AE_KEY = "ae_seed_0"  # the name of a drawn autoencoder in the dicts a rule reads


def _ae_rules(pca: dict) -> dict[str, Callable[[Model], Verdict]]:
    """Claims judged per autoencoder. ``pca``: metrics/pca.json and PCA's reconstruction measures."""

    def recon(a: Model, **others: dict) -> dict:
        return {"reconstructions": {AE_KEY: a.reconstruction, **others}}

    return {
        "ae_reconstructions_recognisable_but_blurred": lambda a: verdicts.recognisable_but_blurred([0], recon(a)),
        "ae_separates_better_than_pca": lambda a: verdicts.ae_separates_better([0], {0: a.metrics}, pca),
        "ae_reconstructs_better_than_pca": lambda a: verdicts.ae_reconstructs_better([0], {0: a.metrics}, pca),
        "pca_blurrier_than_ae": lambda a: verdicts.pca_blurrier([0], recon(a, pca=pca["reconstruction"])),
    }


def _grids(a: Model, v: Model) -> dict:
    return {"grids": {"ae": a.grid, "vae": v.grid, GRID_KEY: v.drawn}}


# Claims read off one autoencoder's grid (the study's first) against its VAE's: one outcome.
ONE_PAIR_RULES: dict[str, Callable[[Model, Model], Verdict]] = {
    "ae_grid_clearer_than_vae": lambda a, v: verdicts.ae_grid_clearer(_grids(a, v)),
    "vae_grid_more_varied": lambda a, v: verdicts.vae_grid_more_varied(_grids(a, v)),
    "vae_grid_smoother": lambda a, v: verdicts.vae_grid_smoother(_grids(a, v)),
}
# Claims that compare its one VAE with each of its autoencoders: a count of runs.
AGAINST_EACH_AE_RULES: dict[str, Callable[[Model, Model], Verdict]] = {
    "vae_more_compact": lambda a, v: verdicts.vae_more_compact([0], {0: a.metrics}, v.metrics),
    "vae_closer_to_normal": lambda a, v: verdicts.vae_closer_to_prior(
        [0], {"reconstructions": {AE_KEY: a.reconstruction, "vae": v.reconstruction}}
    ),
    "vae_clusters_more_distinct": lambda a, v: verdicts.vae_separates_better([0], {0: a.metrics}, v.metrics),
}
VAE_RULES: dict[str, Callable[[Model], Verdict]] = {
    "samples_recognisable": lambda v: verdicts.samples_recognisable(v.samples),
    "samples_varied_within_a_set": lambda v: verdicts.samples_varied(v.samples),
    "sample_sets_differ_beyond_chance": lambda v: verdicts.samples_differ(v.samples),
    "sample_quality_stable": lambda v: verdicts.sample_quality_stable(v.samples),
}
# The claims about the study's runs together, on every set of that many autoencoders.
RUNS_RULES: dict[str, Callable[[Sequence[Model]], Verdict]] = {
    "runs_differ_notably": lambda t: verdicts.runs_differ(range(len(t)), {i: a.metrics for i, a in enumerate(t)}),
    "compressed_run_overlaps_expansive_run_separates": lambda t: verdicts.width_matches_separation(
        range(len(t)), {i: a.metrics for i, a in enumerate(t)}
    ),
}
# What the study's procedure prints for each kind of claim, and the words for its draws.
DESIGNS = {
    **dict.fromkeys(("ae_reconstructions_recognisable_but_blurred", "ae_separates_better_than_pca",
                     "ae_reconstructs_better_than_pca", "pca_blurrier_than_ae"), "ae"),
    **dict.fromkeys(ONE_PAIR_RULES, "one_pair"),
    **dict.fromkeys(AGAINST_EACH_AE_RULES, "vae_against_each_ae"),
    **dict.fromkeys(VAE_RULES, "vae"),
    **dict.fromkeys(RUNS_RULES, "runs"),
}  # fmt: skip


def held(v: Verdict) -> bool:
    """A verdict on one draw holds: in its one run, or outright."""
    return v.outcome == v.runs if v.runs is not None else bool(v.outcome)


@dataclass(frozen=True)
class Pool:
    """The pooled models and every rule's outcome on every draw of them.

    ``ae``: (claims, autoencoders); ``vae``: (claims, VAEs); ``pairs``: (claims, autoencoders,
    VAEs); ``runs``: (claims, sets of ``study_runs`` autoencoders, in ``combinations`` order).
    The study's own models are the first ``study_runs`` autoencoders and the first VAE.
    """

    study_runs: int
    autoencoders: int
    vaes: int
    ae: dict[str, np.ndarray]
    vae: dict[str, np.ndarray]
    pairs: dict[str, np.ndarray]
    runs: dict[str, np.ndarray]

    @classmethod
    def of(cls, table: pd.DataFrame, pca: dict, study_runs: int) -> Pool:
        """``table``: the per-model table, the study's models first (as the robustness stage writes
        it); ``pca``: metrics/pca.json with PCA's ``reconstruction`` measures."""
        aes = [Model.of(r) for _, r in table[table["kind"] == "ae"].iterrows()]
        vaes = [Model.of(r) for _, r in table[table["kind"] == "vae"].iterrows()]

        def outcomes(rule: Callable, draws: Sequence) -> np.ndarray:
            return np.array([held(rule(*d)) for d in draws], dtype=bool)

        pairs = [(a, v) for a in aes for v in vaes]
        shape = (len(aes), len(vaes))
        return cls(
            study_runs=study_runs,
            autoencoders=len(aes),
            vaes=len(vaes),
            ae={k: outcomes(rule, [(a,) for a in aes]) for k, rule in _ae_rules(pca).items()},
            vae={k: outcomes(rule, [(v,) for v in vaes]) for k, rule in VAE_RULES.items()},
            pairs={
                k: outcomes(rule, pairs).reshape(shape) for k, rule in (ONE_PAIR_RULES | AGAINST_EACH_AE_RULES).items()
            },
            runs={
                k: outcomes(lambda *t, rule=rule: rule(t), list(combinations(aes, study_runs)))
                for k, rule in RUNS_RULES.items()
            },
        )

    def draws(self, key: str) -> np.ndarray:
        """Every draw's outcome of claim ``key``, flat."""
        for family in (self.ae, self.vae, self.pairs, self.runs):
            if key in family:
                return family[key].ravel()
        raise KeyError(key)

    def independent(self, key: str) -> int:
        """How many disjoint draws the pool holds for claim ``key``: no two share a model."""
        return {
            "ae": self.autoencoders,
            "vae": self.vaes,
            "one_pair": min(self.autoencoders, self.vaes),
            "vae_against_each_ae": min(self.autoencoders, self.vaes),
            "runs": self.autoencoders // self.study_runs,
        }[DESIGNS[key]]

    def effective(self, key: str) -> float:
        """The pooled share's effective number of independent draws: one draw's variance over the
        share's variance, which draws that share models make larger than one draw's over the
        number of draws. One model per draw: the models. Pairs (every autoencoder with every VAE,
        a crossed design): both from a two-way random-effects ANOVA. Sets of autoencoders (a
        U-statistic): p(1 - p) over the share's delete-one-autoencoder jackknife variance. Kept
        between the disjoint draws and every draw; where nothing measures how much the draws
        share (every draw agrees, a kind with one model, no variance left), the disjoint draws
        stand."""
        design, draws = DESIGNS[key], self.draws(key)
        share, disjoint = float(draws.mean()), self.independent(key)
        if design in ("ae", "vae") or share in (0.0, 1.0):
            return float(disjoint)
        if design == "runs":  # one set of autoencoders holds or not: the share is 0 or 1, returned above
            draw, variance = share * (1 - share), jackknife_variance(self.runs[key], self.autoencoders, self.study_runs)
        else:
            if min(self.autoencoders, self.vaes) < 2:
                return float(disjoint)
            draw, variance = crossed_variance(self.pairs[key].astype(float))
        if not (np.isfinite(variance) and variance > 0):
            return float(disjoint)
        return float(np.clip(draw / variance, disjoint, draws.size))


def crossed_variance(outcomes: np.ndarray) -> tuple[float, float]:
    """One cell's variance and the variance of the mean of a crossed (rows, columns) design with
    one outcome per cell (at least two of each), from the two-way random-effects ANOVA's mean
    squares; negative components count as 0."""
    a, v = outcomes.shape
    grand, rows, cols = outcomes.mean(), outcomes.mean(axis=1), outcomes.mean(axis=0)
    ms_rows = v * np.sum((rows - grand) ** 2) / (a - 1)
    ms_cols = a * np.sum((cols - grand) ** 2) / (v - 1)
    ms_cells = np.sum((outcomes - rows[:, None] - cols[None, :] + grand) ** 2) / ((a - 1) * (v - 1))
    row_part, col_part = max(0.0, (ms_rows - ms_cells) / v), max(0.0, (ms_cols - ms_cells) / a)
    return float(row_part + col_part + ms_cells), float(row_part / a + col_part / v + ms_cells / (a * v))


def jackknife_variance(outcomes: np.ndarray, models: int, size: int) -> float:
    """The delete-one-model jackknife variance of the mean outcome over every set of ``size`` of
    ``models`` models (``outcomes`` in ``combinations`` order)."""
    sets = np.array(list(combinations(range(models), size)))
    left_out = np.array([outcomes[~(sets == i).any(axis=1)].mean() for i in range(models)])
    return float((models - 1) / models * np.sum((left_out - left_out.mean()) ** 2))


# --- the pooled conclusion -----------------------------------------------------------------


def jeffreys(successes: float, trials: float) -> tuple[float, float]:
    """The Jeffreys 95% interval of a share: the Beta(k + 1/2, n - k + 1/2) posterior's central
    95%, with the end at 0 or 1 where no draw (or every draw) holds (Brown, Cai and DasGupta)."""
    tail = (1 - CONFIDENCE) / 2
    a, b = successes + PRIOR, trials - successes + PRIOR
    low = 0.0 if successes <= 0 else float(beta.ppf(tail, a, b))
    high = 1.0 if successes >= trials else float(beta.isf(tail, a, b))
    return low, high


def label(low: float, high: float) -> str:
    if low > SOLID_ABOVE and high >= SOLID_REACHES:
        return "holds"
    if high < SOLID_ABOVE:
        return "does not hold"
    return "undetermined"


@dataclass(frozen=True)
class Pooled:
    share: float  # of every draw the pool allows
    n: float  # effective independent draws (Pool.effective): the interval's sample size
    low: float
    high: float
    label: str


def pooled(pool: Pool, key: str) -> Pooled:
    share, n = float(pool.draws(key).mean()), pool.effective(key)
    low, high = jeffreys(share * n, n)
    return Pooled(share, n, low, high, label(low, high))


# --- the study's procedure as a distribution -----------------------------------------------


# The measures each claim judged per run, or on the runs together, reads per model: the chance
# of what the study's procedure prints is simulated from them. tests/test_robustness.py holds
# each rule to its list.
SIMULATED = {
    "ae_reconstructions_recognisable_but_blurred": ("recon_classifier_accuracy", "recon_sharpness_ratio"),
    "ae_separates_better_than_pca": ("silhouette",),
    "ae_reconstructs_better_than_pca": ("test_mse",),
    "pca_blurrier_than_ae": ("recon_sharpness_ratio",),
    "vae_more_compact": ("mean_code_std",),
    "vae_closer_to_normal": ("recon_prior_kl",),
    "vae_clusters_more_distinct": ("silhouette", "knn_accuracy"),
    "runs_differ_notably": ("test_mse", "silhouette"),
    "compressed_run_overlaps_expansive_run_separates": ("mean_code_std", "silhouette"),
}
SIMULATIONS = 2000  # study procedures per count claim; a chance's Monte Carlo error is below 1.2%


def with_measures(model: Model, values: dict[str, float]) -> Model:
    """``model`` with the per-model table's measures ``values`` (its column names) in place."""
    metrics, reconstruction = dict(model.metrics), dict(model.reconstruction)
    for column, value in values.items():
        if column.startswith("recon_"):
            reconstruction[column.removeprefix("recon_")] = value
        elif column == "mean_code_std":
            metrics["code_std"] = [value]
        else:
            metrics[column] = value
    return replace(model, metrics=metrics, reconstruction=reconstruction)


def new_models(rows: pd.DataFrame, columns: Sequence[str], count: int, rng: np.random.Generator) -> np.ndarray:
    """(SIMULATIONS, count, columns): the measures of ``count`` new models per simulation, drawn
    from a normal whose mean and covariance are first drawn from their posterior given ``rows``
    (normal-inverse-Wishart, the posterior under the prior |cov|^-(d+1)/2), so the pool's own
    uncertainty is in every draw. A measure without spread in the pool stays at its value; with
    no more models than measures, whose covariance is singular, each measure is drawn alone."""
    x = rows[list(columns)].to_numpy(dtype=float)
    if not np.isfinite(x).all():
        raise ValueError(f"the per-model table lacks a value of {', '.join(columns)}: the simulation needs every one")
    n = len(x)
    out = np.broadcast_to(x.mean(axis=0), (SIMULATIONS, count, len(columns))).copy()
    free = np.flatnonzero(x.std(axis=0) > 0)
    for block in [free] if 0 < len(free) < n else [[j] for j in free]:
        scatter = np.atleast_2d(np.cov(x[:, block], rowvar=False) * (n - 1))
        covs = invwishart.rvs(df=n - 1, scale=scatter, size=SIMULATIONS, random_state=rng)
        covs = np.asarray(covs).reshape(SIMULATIONS, len(block), len(block))
        roots = np.linalg.cholesky(covs)
        shifts = np.einsum("sij,sj->si", roots, rng.standard_normal((SIMULATIONS, len(block))))
        means = x[:, block].mean(axis=0) + shifts / np.sqrt(n)  # the mean given the covariance: N(mean, cov / n)
        draws = np.einsum("sij,scj->sci", roots, rng.standard_normal((SIMULATIONS, count, len(block))))
        out[:, :, block] = means[:, None, :] + draws
    return out


def simulated(table: pd.DataFrame, pca: dict, key: str, runs: int, seed: int = 0) -> dict[bool | int, float]:
    """The chance of each verdict the study's procedure prints for claim ``key`` (one of
    SIMULATED): ``runs`` new autoencoders and one new VAE per simulation (:func:`new_models`),
    the claim's rule on them as the study applies it, each verdict's share of the simulations
    with 1/2 a pseudo-count on each. So the chance follows the measure's margin: a claim that
    holds by a wide margin in every model is near-certain to be printed as holding. Where a
    kind the claim reads has one model, nothing measures how its models vary: every verdict is
    as likely as any other."""
    rng = np.random.default_rng(seed)
    columns, design = SIMULATED[key], DESIGNS[key]
    kinds = {kind: table[table["kind"] == kind] for kind in ("ae", "vae")}
    outcomes: list[bool | int] = [True, False] if design == "runs" else list(range(runs + 1))
    if any(len(kinds[kind]) < 2 for kind in (("ae", "vae") if design == "vae_against_each_ae" else ("ae",))):
        return dict.fromkeys(outcomes, 1 / len(outcomes))
    template = {kind: Model.of(frame.iloc[0]) for kind, frame in kinds.items()}

    def models(kind: str, count: int) -> list[list[Model]]:
        drawn = new_models(kinds[kind], columns, count, rng)
        return [[with_measures(template[kind], dict(zip(columns, m, strict=True))) for m in sim] for sim in drawn]

    aes = models("ae", runs)
    if design == "ae":
        rule = _ae_rules(pca)[key]
        printed = [sum(held(rule(a)) for a in sim) for sim in aes]
    elif design == "vae_against_each_ae":
        pairs = zip(aes, models("vae", 1), strict=True)
        printed = [sum(held(AGAINST_EACH_AE_RULES[key](a, vae)) for a in sim) for sim, (vae,) in pairs]
    else:
        printed = [held(RUNS_RULES[key](sim)) for sim in aes]
    return {o: float((printed.count(o) + PRIOR) / (SIMULATIONS + PRIOR * len(outcomes))) for o in outcomes}


def printed(pool: Pool, key: str) -> dict[bool | int, float]:
    """The chance of each verdict the study's procedure prints for claim ``key``, one outside
    SIMULATED: one yes or no, from the pool's share under the Jeffreys prior."""
    design = DESIGNS[key]
    if design == "one_pair":
        k, n = pool.pairs[key].sum(axis=0), pool.autoencoders
        chance = float(np.mean((k + PRIOR) / (n + 2 * PRIOR)))
    else:  # one VAE: the effective draws carry the share's weight
        share, n = float(pool.draws(key).mean()), pool.effective(key)
        chance = (share * n + PRIOR) / (n + 2 * PRIOR)
    return {True: chance, False: 1 - chance}


def predictive_set(chances: dict[bool | int, float], level: float) -> list[bool | int]:
    """The fewest printable verdicts, likeliest first, whose chances add up to ``level``."""
    chosen, total = [], 0.0
    for outcome, chance in sorted(chances.items(), key=lambda item: (-item[1], str(item[0]))):
        if total >= level:
            break
        chosen.append(outcome)
        total += chance
    return chosen


def analyse(table: pd.DataFrame, pca: dict, study_runs: int) -> dict:
    """metrics/robustness.json's claims from the per-model table (the study's models first): per
    claim the pooled conclusion, the chance of each verdict the study's procedure prints and its
    95% predictive set."""
    pool = Pool.of(table, pca, study_runs)
    claims = {}
    for key, design in DESIGNS.items():
        chances = simulated(table, pca, key, study_runs) if key in SIMULATED else printed(pool, key)
        p = pooled(pool, key)
        claims[key] = {
            "design": design,
            "draws": int(pool.draws(key).size),
            "holds_in": int(pool.draws(key).sum()),
            "share": p.share,
            "n": p.n,
            "low": p.low,
            "high": p.high,
            "label": p.label,
            "printed": [[outcome, chance] for outcome, chance in chances.items()],
            "set95": predictive_set(chances, CONFIDENCE),
        }
    return {
        "pool": {"autoencoders": pool.autoencoders, "vaes": pool.vaes, "study_runs": study_runs},
        "claims": claims,
    }


def spread_panels(table: pd.DataFrame, pca: dict) -> list[tuple[str, dict, float | None, bool]]:
    """The per-model measures behind the claims with one number per model and a threshold, for
    :func:`plots.spread_figure`: (title, {group: (values, is the study's)}, threshold, log)."""
    kinds = {"AE": table[table["kind"] == "ae"], "VAE": table[table["kind"] == "vae"]}
    vae = kinds["VAE"]
    sets = [c.removesuffix("_confidence") for c in vae.columns if c.startswith("set") and c.endswith("_confidence")]

    def of(frame: pd.DataFrame, values) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(values, dtype=float), (frame["source"] == "study").to_numpy()

    def each(column: str, *names: str) -> dict:
        return {name: of(kinds[name], kinds[name][column]) for name in names}

    def over_sets(quality: str, reduce) -> np.ndarray:
        return reduce(vae[[f"{s}_{quality}" for s in sets]].to_numpy(), axis=1)

    def set_cv(quality: str) -> np.ndarray:
        values = vae[[f"{s}_{quality}" for s in sets]].to_numpy()
        return values.std(axis=1, ddof=1) / np.abs(values.mean(axis=1))

    return [
        ("reconstructions recognisable: classifier accuracy", each("recon_classifier_accuracy", "AE"),
         verdicts.RECOGNISABLE, False),
        ("AE separates better than PCA: silhouette", each("silhouette", "AE"), pca["silhouette"], False),
        ("AE reconstructs better than PCA: test MSE", each("test_mse", "AE"), pca["test_mse"], False),
        ("PCA blurrier: sharpness of reconstructions", each("recon_sharpness_ratio", "AE"),
         pca["reconstruction"]["sharpness_ratio"], False),
        ("AE grid clearer: grid sharpness", each("grid_sharpness_ratio", "AE", "VAE"), None, False),
        ("AE grid clearer: grid confidence", each("grid_confidence", "AE", "VAE"), None, False),
        ("VAE more compact: mean code std", each("mean_code_std", "AE", "VAE"), None, True),
        ("VAE closer to N(0, I): KL of the codes", each("recon_prior_kl", "AE", "VAE"), None, True),
        ("VAE clusters more distinct: silhouette", each("silhouette", "AE", "VAE"), None, False),
        ("samples recognisable: lowest set confidence", {"VAE": of(vae, over_sets("confidence", np.min))},
         verdicts.CONFIDENT, False),
        ("samples varied: lowest set entropy", {"VAE": of(vae, over_sets("class_entropy", np.min))},
         verdicts.VARIED * np.log(10), False),
        ("sets differ: class share gap (noise units)", {"VAE": of(vae, vae["gap_max_z"])}, verdicts.BEYOND_NOISE,
         False),
        ("quality stable: CV of confidence over sets", {"VAE": of(vae, set_cv("confidence"))}, verdicts.STABLE_CV,
         False),
        ("quality stable: CV of Frechet over sets", {"VAE": of(vae, set_cv("frechet"))}, verdicts.STABLE_CV, False),
    ]  # fmt: skip


# --- reading metrics/robustness.json -------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """One claim's standing: the pooled conclusion and the study's procedure (``claims`` entry of
    metrics/robustness.json for a measured claim)."""

    label: str
    claim: dict | None = None
    chance: float | None = None  # that the study's procedure prints this run's verdict


def standing(v: Verdict, claims: dict) -> Standing | None:
    """Verdict ``v``'s standing from metrics/robustness.json's ``claims``; None if unmeasured."""
    if v.key in EXACT:
        return Standing("exact")
    if v.key in ONE_DRAW:
        return Standing("one draw")
    c = claims.get(v.key)
    if c is None:
        return None
    chances = {_outcome(o): chance for o, chance in c["printed"]}
    return Standing(c["label"], c, chances.get(_outcome(v.outcome), 0.0))


def _outcome(o: bool | int) -> bool | int:
    """JSON keeps true and 1 apart; Python's dict keys do not: bools stay bools."""
    return o if isinstance(o, bool) else int(o)


def label_counts(judged: Sequence[Standing | None]) -> dict[str, int]:
    """How many verdicts carry each label: for metrics/study.json."""
    names = [r.label if r else "not measured" for r in judged]
    return {name.replace(" ", "_"): names.count(name) for name in (*LABELS, "not measured")}


def disagrees(v: Verdict, r: Standing | None) -> bool:
    """The study's printed verdict says otherwise than the pooled evidence: the pool holds and
    the study printed less than every run, or the pool does not hold and it printed any."""
    if r is None or r.label not in ("holds", "does not hold"):
        return False
    return not held(v) if r.label == "holds" else bool(v.outcome)  # a count of 0 is no run
