"""One verdict per claim of the study, computed from the pipeline's metrics by a stated rule.

Each rule is a small function of the metrics dicts (as read from metrics/*.json and
plots/sweep.csv) that returns a :class:`Verdict`; tests/test_verdicts.py checks every rule
on hand-made metrics where the answer is known. The report prints them as a table, and
metrics/study.json keeps each outcome (a boolean, or the number of runs it holds in) so that
`dvc metrics diff` shows when an experiment flips one.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stages.lib.markdown import num
from stages.lib.metrics import coefficient_of_variation
from stages.lib.study_code import GRID_KEY

NEAR = 2  # an elbow "near" a size: within this many sizes of it
NOTABLE_CV = 0.05  # runs "differ notably": a coefficient of variation above 5%
RECOGNISABLE = 0.5  # the classifier recognises at least half the images (chance: 0.1)
CONFIDENT = 0.8  # samples "recognisable": mean top-class confidence of at least 0.8
VARIED = 0.9  # "varied" sets: class entropy at least 90% of ln 10 (all classes equally common)
BEYOND_NOISE = 3.0  # sets "differ": a class share gap of more than 3 sampling-noise units
STABLE_CV = 0.1  # quality "stable" over sets: coefficients of variation below 10%


@dataclass(frozen=True)
class Verdict:
    key: str  # its name in metrics/study.json
    claim: str  # the study's words, short
    measure: str
    values: str
    rule: str
    outcome: bool | int  # holds or not; or the number of runs it holds in
    runs: int | None = None  # for a per-run outcome: out of how many
    # For a claim read off the VAE grid: the same rule on the grid as the study's code drew it.
    on_study_grid: bool | None = None

    @property
    def text(self) -> str:
        if self.on_study_grid is not None:
            study = "holds" if self.on_study_grid else "does not hold"
            return f"{'holds' if self.outcome else 'does not hold'} on the walk; {study} on the study's grid"
        if self.runs is None:
            return "holds" if self.outcome else "does not hold"
        if self.outcome == self.runs:
            return f"holds in all {self.runs} runs"
        return "holds in no run" if self.outcome == 0 else f"holds in {self.outcome} of {self.runs} runs"


def mean_code_std(m: dict) -> float:
    """The mean over axes of a model's code std (metrics' ``code_std``): how wide its space is."""
    return sum(m["code_std"]) / len(m["code_std"])


def _per_run(seeds: Sequence[int], test) -> int:
    return sum(bool(test(s)) for s in seeds)


def _model_name(key: str) -> str:
    """``ae_seed_1`` -> ``AE seed 1``, ``pca`` -> ``PCA``."""
    return key.upper().replace("_SEED_", " seed ")


def _values(pairs: Sequence[tuple[str, float]], digits: int = 3) -> str:
    return ", ".join(f"{name} {num(value, digits)}" for name, value in pairs)


def _against_each_seed(
    *,
    key: str,
    claim: str,
    measure: str,
    rule: str,
    name: str,
    value: float,
    per_seed: dict[int, float],
    compare: Callable[[float, float], bool],
    digits: int = 3,
) -> Verdict:
    """A claim that compares one model's number with the autoencoder's of every seed:
    ``compare(value, per_seed[s])`` decides each run."""
    pairs = [(name, value)] + [(f"AE seed {s}", v) for s, v in per_seed.items()]
    outcome = sum(bool(compare(value, v)) for v in per_seed.values())
    return Verdict(key, claim, measure, _values(pairs, digits), rule, outcome, len(per_seed))


def runs_differ(seeds: Sequence[int], ae: dict) -> Verdict:
    mse = coefficient_of_variation([ae[s]["test_mse"] for s in seeds])
    sil = coefficient_of_variation([ae[s]["silhouette"] for s in seeds])
    return Verdict(
        "runs_differ_notably",
        "runs differ notably in projections and reconstructions",
        "spread over seeds relative to the mean (CV) of test MSE and of silhouette",
        f"CV of test MSE {100 * mse:.1f}%, of silhouette {100 * sil:.0f}%",
        f"either CV above {100 * NOTABLE_CV:.0f}%",
        mse > NOTABLE_CV or sil > NOTABLE_CV,
    )


def width_matches_separation(seeds: Sequence[int], ae: dict) -> Verdict:
    widest, narrowest = (f(seeds, key=lambda s: mean_code_std(ae[s])) for f in (max, min))
    best, worst = (f(seeds, key=lambda s: ae[s]["silhouette"]) for f in (max, min))
    return Verdict(
        "compressed_run_overlaps_expansive_run_separates",
        'one run "more compressed, more overlap", another "more expansive, clearer separation"',
        "per seed: mean code std and silhouette",
        "; ".join(
            f"seed {s}: code std {num(mean_code_std(ae[s]), 3)}, silhouette {num(ae[s]['silhouette'], 2)}"
            for s in seeds
        ),
        "the widest run separates best and the narrowest worst",
        len(seeds) > 1 and widest == best and narrowest == worst,
    )


def recognisable_but_blurred(seeds: Sequence[int], judge: dict) -> Verdict:
    rec = judge["reconstructions"]

    def in_run(s: int) -> bool:
        r = rec[f"ae_seed_{s}"]
        return r["classifier_accuracy"] >= RECOGNISABLE and r["sharpness_ratio"] < 1

    return Verdict(
        "ae_reconstructions_recognisable_but_blurred",
        "the autoencoder's reconstructions are recognisable but blurred",
        "classifier accuracy on reconstructed test images; their gradient energy over the originals'",
        "; ".join(
            f"{_model_name(k)}: accuracy {num(r['classifier_accuracy'], 3)}, sharpness {num(r['sharpness_ratio'], 2)}"
            for k, r in rec.items()
        ),
        f"accuracy at least {RECOGNISABLE} and sharpness below 1, per seed",
        _per_run(seeds, in_run),
        len(seeds),
    )


def pca_blurrier(seeds: Sequence[int], judge: dict) -> Verdict:
    rec = judge["reconstructions"]
    return _against_each_seed(
        key="pca_blurrier_than_ae",
        claim="PCA's reconstructions are blurrier than the autoencoder's",
        measure="sharpness ratio (gradient energy over the originals')",
        rule="PCA's ratio below the AE's, per seed",
        name="PCA",
        value=rec["pca"]["sharpness_ratio"],
        per_seed={s: rec[f"ae_seed_{s}"]["sharpness_ratio"] for s in seeds},
        compare=operator.lt,
        digits=2,
    )


def ae_separates_better(seeds: Sequence[int], ae: dict, pca: dict) -> Verdict:
    return _against_each_seed(
        key="ae_separates_better_than_pca",
        claim="PCA separates digits less well than the autoencoder",
        measure="silhouette of the test codes by class",
        rule="AE silhouette above PCA's, per seed",
        name="PCA",
        value=pca["silhouette"],
        per_seed={s: ae[s]["silhouette"] for s in seeds},
        compare=operator.lt,
    )


def ae_reconstructs_better(seeds: Sequence[int], ae: dict, pca: dict) -> Verdict:
    return _against_each_seed(
        key="ae_reconstructs_better_than_pca",
        claim="the autoencoder reconstructs better than PCA",
        measure="test MSE per pixel, 2-D",
        rule="AE test MSE below PCA's, per seed",
        name="PCA",
        value=pca["test_mse"],
        per_seed={s: ae[s]["test_mse"] for s in seeds},
        compare=operator.gt,
        digits=4,
    )


def pca_deterministic(pca: dict) -> Verdict:
    return Verdict(
        "pca_deterministic",
        "PCA is deterministic: two fits give identical results",
        "a second fit on the same images in the same stage",
        "identical" if pca["refit_identical"] else "different",
        "every component, mean and scale equal bit for bit",
        bool(pca["refit_identical"]),
    )


def ae_below_pca_everywhere(rows: Sequence[dict]) -> Verdict:
    below = [r for r in rows if r["ae_test"] < r["pca_test"]]
    return Verdict(
        "ae_below_pca_at_every_size",
        "the autoencoder's error is below PCA's for all sizes",
        "test MSE per latent size (the sweep)",
        f"below at {len(below)} of {len(rows)} sizes",
        "AE test MSE below PCA's at every size swept",
        len(below) == len(rows),
    )


def ae_falls_faster(rows: Sequence[dict]) -> Verdict:
    first, quarter = rows[0], rows[max(1, len(rows) // 4)]

    def drop(key: str) -> float:
        return 1 - quarter[key] / first[key]

    ae, pca = drop("ae_test"), drop("pca_test")
    sizes = f"{int(first['latent'])} to {int(quarter['latent'])}"
    return Verdict(
        "ae_error_falls_faster_at_small_sizes",
        "the autoencoder's error falls faster, especially at low sizes",
        f"relative fall of the test MSE from size {sizes} (the first quarter of the sweep)",
        f"AE {100 * ae:.0f}%, PCA {100 * pca:.0f}%",
        "the AE's fall larger than PCA's",
        len(rows) > 1 and ae > pca,
    )


def elbow_near(method: str, elbow: int | None, seen: int, key: str) -> Verdict:
    name = {"ae": "the autoencoder's", "pca": "PCA's"}[method]
    return Verdict(
        key,
        f"{name} elbow is around {seen}",
        "Kneedle on the test-error curve",
        f"elbow at {num(elbow)}",
        f"within {NEAR} sizes of {seen}",
        elbow is not None and abs(elbow - seen) <= NEAR,
    )


def ae_grid_clearer(judge: dict) -> Verdict:
    ae, vae = judge["grids"]["ae"], judge["grids"]["vae"]
    return Verdict(
        "ae_grid_clearer_than_vae",
        "the autoencoder's decoded digits are clearer and sharper than the VAE's",
        "decoded grids: sharpness ratio and the classifier's mean confidence",
        f"AE {num(ae['sharpness_ratio'], 2)} / {num(ae['confidence'], 3)}, "
        f"VAE {num(vae['sharpness_ratio'], 2)} / {num(vae['confidence'], 3)}",
        "the AE grid sharper and more confidently classified",
        ae["sharpness_ratio"] > vae["sharpness_ratio"] and ae["confidence"] > vae["confidence"],
    )


def _more_varied(ae: dict, vae: dict) -> bool:
    if vae["distinct_classes"] != ae["distinct_classes"]:
        return vae["distinct_classes"] > ae["distinct_classes"]
    return vae["class_entropy"] > ae["class_entropy"]


def vae_grid_more_varied(judge: dict) -> Verdict:
    grids = judge["grids"]
    ae, vae, drawn = grids["ae"], grids["vae"], grids[GRID_KEY]

    def cells(g: dict) -> str:
        return f"{g['distinct_classes']} classes, entropy {num(g['class_entropy'], 3)}"

    return Verdict(
        "vae_grid_more_varied",
        "the VAE's grid shows more diverse digits",
        "distinct classes the classifier predicts over the grid; the entropy of their histogram "
        "(ln 10 = 2.303 when even)",
        f"AE {cells(ae)}; VAE walk {cells(vae)}; VAE as the study drew it {cells(drawn)}",
        "more distinct classes in the VAE grid, or as many and a higher entropy",
        _more_varied(ae, vae),
        on_study_grid=_more_varied(ae, drawn),
    )


def _smoother(ae: dict, vae: dict) -> bool:
    return vae["neighbour_distance"] < ae["neighbour_distance"] and vae["class_change_rate"] < ae["class_change_rate"]


def vae_grid_smoother(judge: dict) -> Verdict:
    grids = judge["grids"]
    ae, vae, drawn = grids["ae"], grids["vae"], grids[GRID_KEY]

    def cells(g: dict) -> str:
        return f"{num(g['neighbour_distance'], 3)} / {num(g['class_change_rate'], 2)}"

    return Verdict(
        "vae_grid_smoother",
        "the VAE's grid changes more smoothly from cell to cell",
        "mean absolute pixel change and share of predicted-class changes between adjacent cells",
        f"AE {cells(ae)}; VAE walk {cells(vae)}; VAE as the study drew it {cells(drawn)}",
        "both lower for the VAE",
        _smoother(ae, vae),
        on_study_grid=_smoother(ae, drawn),
    )


def vae_more_compact(seeds: Sequence[int], ae: dict, vae: dict) -> Verdict:
    return _against_each_seed(
        key="vae_more_compact",
        claim="the VAE's latent space is more compact",
        measure="mean code std of the test codes",
        rule="the VAE's mean code std below the AE's, per seed",
        name="VAE",
        value=mean_code_std(vae),
        per_seed={s: mean_code_std(ae[s]) for s in seeds},
        compare=operator.lt,
    )


def vae_closer_to_prior(seeds: Sequence[int], judge: dict) -> Verdict:
    rec = judge["reconstructions"]
    return _against_each_seed(
        key="vae_closer_to_normal",
        claim="the VAE's codes are more uniformly distributed, following N(0, I)",
        measure="KL from N(0, I) of a Gaussian fitted to the test codes",
        rule="the VAE's KL below the AE's, per seed",
        name="VAE",
        value=rec["vae"]["prior_kl"],
        per_seed={s: rec[f"ae_seed_{s}"]["prior_kl"] for s in seeds},
        compare=operator.lt,
    )


def vae_separates_better(seeds: Sequence[int], ae: dict, vae: dict) -> Verdict:
    def in_run(s: int) -> bool:
        return vae["silhouette"] > ae[s]["silhouette"] and vae["knn_accuracy"] > ae[s]["knn_accuracy"]

    return Verdict(
        "vae_clusters_more_distinct",
        'the VAE\'s classes form "better-separated", "more distinct" clusters',
        "silhouette and 5-NN accuracy of the test codes",
        f"VAE {num(vae['silhouette'], 3)} / {num(vae['knn_accuracy'], 3)}; "
        + "; ".join(f"AE seed {s} {num(ae[s]['silhouette'], 3)} / {num(ae[s]['knn_accuracy'], 3)}" for s in seeds),
        "both higher for the VAE, per seed",
        _per_run(seeds, in_run),
        len(seeds),
    )


def samples_recognisable(samples: dict) -> Verdict:
    sets = samples["vae_sets"]
    return Verdict(
        "samples_recognisable",
        "each set of samples displays recognisable digits",
        "the classifier's mean top-class confidence per set",
        _values([(name.removeprefix("vae_"), s["confidence"]) for name, s in sets.items()]),
        f"at least {CONFIDENT} in every set",
        all(s["confidence"] >= CONFIDENT for s in sets.values()),
    )


def samples_varied(samples: dict) -> Verdict:
    sets = samples["vae_sets"]
    return Verdict(
        "samples_varied_within_a_set",
        "each run shows a mix of different digits",
        "entropy of the predicted-class histogram per set (ln 10 = 2.303 when even)",
        _values([(name.removeprefix("vae_"), s["class_entropy"]) for name, s in sets.items()]),
        f"at least {VARIED:.0%} of ln 10 in every set",
        all(s["class_entropy"] >= VARIED * 2.302585 for s in sets.values()),
    )


def samples_differ(samples: dict) -> Verdict:
    gap = samples["class_share_gap"]
    return Verdict(
        "sample_sets_differ_beyond_chance",
        "some digits appear more frequently in certain runs than in others",
        "largest gap between two sets in one class's share, in sampling-noise units",
        f"{100 * gap['max']:.1f} points, {num(gap['max_z'], 2)} noise units",
        f"more than {BEYOND_NOISE:g} noise units",
        gap["max_z"] > BEYOND_NOISE,
    )


def sample_quality_stable(samples: dict) -> Verdict:
    sets = list(samples["vae_sets"].values())
    conf = coefficient_of_variation([s["confidence"] for s in sets])
    frechet = coefficient_of_variation([s["frechet"] for s in sets])
    return Verdict(
        "sample_quality_stable",
        "the quality of generated digits is relatively stable across runs",
        "CV over the sets of confidence and of Frechet distance",
        f"confidence {100 * conf:.1f}%, Frechet {100 * frechet:.1f}%",
        f"both below {100 * STABLE_CV:.0f}%",
        conf < STABLE_CV and frechet < STABLE_CV,
    )


STUDY_ELBOWS = {"ae": 10, "pca": 15}  # what the study read off its curves by eye


def all_verdicts(
    seeds: Sequence[int], ae: dict, pca: dict, sweep: dict, rows: Sequence[dict], vae: dict, samples: dict, judge: dict
) -> list[Verdict]:
    """Every claim of the study, in the order of its questions."""
    elbow = sweep["elbow"]
    return [
        runs_differ(seeds, ae),
        width_matches_separation(seeds, ae),
        recognisable_but_blurred(seeds, judge),
        ae_separates_better(seeds, ae, pca),
        ae_reconstructs_better(seeds, ae, pca),
        pca_blurrier(seeds, judge),
        pca_deterministic(pca),
        ae_below_pca_everywhere(rows),
        ae_falls_faster(rows),
        elbow_near("ae", elbow["ae"], STUDY_ELBOWS["ae"], "ae_elbow_near_10"),
        elbow_near("pca", elbow["pca"], STUDY_ELBOWS["pca"], "pca_elbow_near_15"),
        elbow_near("pca", elbow["pca"], STUDY_ELBOWS["ae"], "pca_elbow_near_10"),
        ae_grid_clearer(judge),
        vae_grid_more_varied(judge),
        vae_grid_smoother(judge),
        vae_more_compact(seeds, ae, vae),
        vae_closer_to_prior(seeds, judge),
        vae_separates_better(seeds, ae, vae),
        samples_recognisable(samples),
        samples_varied(samples),
        samples_differ(samples),
        sample_quality_stable(samples),
    ]
