"""How solid is each verdict: the per-model table, each claim's rule over the pooled models, the
pooled interval and labels, and the study's procedure as a distribution."""

import math
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from stages.lib import robustness, verdicts
from stages.lib.metrics import SAMPLE_QUALITY
from stages.lib.models import VAE, AEConfig, Autoencoder, VAEConfig
from stages.lib.runtime import seed_everything, stream_seed
from stages.lib.study_code import GRID_KEY

PCA = {"silhouette": 0.02, "test_mse": 0.055, "reconstruction": {"classifier_accuracy": 0.4, "sharpness_ratio": 0.1,
                                                                 "prior_kl": 0.001}}  # fmt: skip
GRID = {"sharpness_ratio": 0.5, "confidence": 0.9, "distinct_classes": 9, "class_entropy": 1.9,
        "neighbour_distance": 0.05, "class_change_rate": 0.3}  # fmt: skip


def ae_row(seed: int, source: str = "fresh", *, silhouette=0.05, test_mse=0.04, code_std=4.0, kl=10.0, **grid) -> dict:
    return robustness.table_row(
        kind="ae", seed=seed, source=source,
        metrics={"test_mse": test_mse, "silhouette": silhouette, "knn_accuracy": 0.7, "code_std": [code_std, code_std]},
        reconstruction={"classifier_accuracy": 0.72, "sharpness_ratio": 0.27, "prior_kl": kl},
        grid=GRID | grid,
    )  # fmt: skip


def vae_row(seed: int, source: str = "fresh", *, silhouette=0.03, code_std=1.2, max_z=2.0, confidence=0.86) -> dict:
    sets = {f"sampling_seed_{j}": {"confidence": confidence, "class_entropy": 2.18, "frechet": 850.0 + j}
            for j in range(5)}  # fmt: skip
    samples = {"vae": {q: float(np.mean([s[q] for s in sets.values()])) for q in SAMPLE_QUALITY}, "vae_sets": sets,
               "class_share_gap": {"max": 0.03, "max_z": max_z}}  # fmt: skip
    return robustness.table_row(
        kind="vae", seed=seed, source=source,
        metrics={"test_loss": 150.0, "test_mse": 0.045, "silhouette": silhouette, "knn_accuracy": 0.7,
                 "code_std": [code_std, code_std]},
        reconstruction={"classifier_accuracy": 0.7, "sharpness_ratio": 0.24, "prior_kl": 0.14},
        grid=GRID | {"sharpness_ratio": 0.27}, drawn=GRID | {"class_entropy": 2.2}, samples=samples,
    )  # fmt: skip


def table(aes: list[dict], vaes: list[dict]) -> pd.DataFrame:
    """A per-model table as the robustness stage writes it: the study's models first."""
    return pd.DataFrame(aes + vaes)


def study_verdicts(t: pd.DataFrame, runs: int = 3) -> dict[str, verdicts.Verdict]:
    """The report's own verdicts on a study made of the table's first ``runs`` autoencoders and first VAE."""
    aes = [robustness.Model.of(r) for _, r in t[t["kind"] == "ae"].head(runs).iterrows()]
    vae = robustness.Model.of(t[t["kind"] == "vae"].iloc[0])
    seeds = list(range(runs))
    judge = {
        "reconstructions": {**{f"ae_seed_{s}": a.reconstruction for s, a in zip(seeds, aes, strict=True)},
                            "pca": PCA["reconstruction"], "vae": vae.reconstruction},
        "grids": {"ae": aes[0].grid, "vae": vae.grid, GRID_KEY: vae.drawn},
    }  # fmt: skip
    ae = {s: a.metrics for s, a in zip(seeds, aes, strict=True)}
    rows = [{"latent": 2, "ae_test": 0.04, "pca_test": 0.05}, {"latent": 3, "ae_test": 0.03, "pca_test": 0.04}]
    pca = {**PCA, "refit_identical": True}
    all_ = verdicts.all_verdicts(
        seeds, ae, pca, {"elbow": {"ae": 10, "pca": 15}}, rows, vae.metrics, vae.samples, judge
    )
    return {v.key: v for v in all_}


def mixed_table(seed: int = 0, fresh: int = 10) -> pd.DataFrame:
    """Study and fresh models whose measures vary, so every rule holds on some draws only."""
    rng = np.random.default_rng(seed)

    def aes(source: str, first: int, n: int) -> list[dict]:
        return [
            ae_row(first + i, source, silhouette=rng.normal(0.035, 0.02), test_mse=rng.normal(0.041, 0.001),
                   code_std=rng.normal(3.8, 0.6), kl=rng.lognormal(2.5, 0.4),
                   sharpness_ratio=rng.normal(0.5, 0.2), confidence=rng.normal(0.92, 0.02))
            for i in range(n)
        ]  # fmt: skip

    def vaes(source: str, first: int, n: int) -> list[dict]:
        return [
            vae_row(first + i, source, silhouette=rng.normal(0.03, 0.015), code_std=rng.normal(1.2, 0.1),
                    max_z=rng.gamma(4.0, 0.6), confidence=rng.normal(0.86, 0.03))
            for i in range(n)
        ]  # fmt: skip

    return table(aes("study", 1, 3) + aes("fresh", 100, fresh), vaes("study", 0, 1) + vaes("fresh", 100, fresh))


# --- the table and each claim's rule --------------------------------------------------------


def test_a_table_row_reads_back_as_the_measures_it_was_made_of():
    t = table([ae_row(1, "study", silhouette=0.07)], [vae_row(0, "study", max_z=4.5)])
    t = pd.read_csv(__import__("io").StringIO(t.to_csv(index=False)))  # through the CSV, as the stage writes it
    ae, vae = (robustness.Model.of(r) for _, r in t.iterrows())
    assert ae.metrics == {"test_mse": 0.04, "silhouette": 0.07, "knn_accuracy": 0.7, "code_std": [4.0]}
    assert ae.samples is None and ae.drawn is None and ae.grid == GRID
    assert vae.samples["class_share_gap"]["max_z"] == 4.5 and len(vae.samples["vae_sets"]) == 5
    assert vae.drawn["class_entropy"] == 2.2 and vae.grid["sharpness_ratio"] == 0.27


@pytest.mark.parametrize("seed", range(4))
def test_each_draws_rule_is_its_verdicts_rule(seed):
    """On the study's own draw (its first three autoencoders and its VAE), every rule's outcome
    is what the report's verdict says: the rule is the verdict's function, not a copy of it."""
    t = mixed_table(seed)
    pool = robustness.Pool.of(t, PCA, 3)
    printed = study_verdicts(t)
    first_triple = list(combinations(range(pool.autoencoders), 3)).index((0, 1, 2))
    for key, design in robustness.DESIGNS.items():
        outcome = {
            "ae": lambda k: int(pool.ae[k][:3].sum()),
            "vae": lambda k: bool(pool.vae[k][0]),
            "one_pair": lambda k: bool(pool.pairs[k][0, 0]),
            "vae_against_each_ae": lambda k: int(pool.pairs[k][:3, 0].sum()),
            "runs": lambda k: bool(pool.runs[k][first_triple]),
        }[design](key)
        assert outcome == printed[key].outcome, key
    measured = set(robustness.DESIGNS) | set(robustness.ONE_DRAW) | set(robustness.EXACT)
    assert measured == set(printed)


def test_the_runs_claims_are_judged_on_every_set_of_three_of_the_pooled_autoencoders():
    pool = robustness.Pool.of(mixed_table(fresh=10), PCA, 3)
    assert pool.runs["runs_differ_notably"].shape == (math.comb(13, 3),)
    assert pool.independent("runs_differ_notably") == 4 and pool.independent("samples_recognisable") == 11


def test_a_changed_verdict_rule_changes_the_pool(monkeypatch):
    t = mixed_table()
    before = robustness.Pool.of(t, PCA, 3).ae["ae_separates_better_than_pca"]
    flipped = verdicts.ae_separates_better

    def opposite(seeds, ae, pca):
        return flipped(
            seeds, {s: {**m, "silhouette": 2 * pca["silhouette"] - m["silhouette"]} for s, m in ae.items()}, pca
        )

    monkeypatch.setattr(verdicts, "ae_separates_better", opposite)
    after = robustness.Pool.of(t, PCA, 3).ae["ae_separates_better_than_pca"]
    assert (after == ~before).all()


def test_a_fresh_autoencoder_and_vae_of_one_seed_start_from_different_weights():
    """Separate seed streams: the first encoder layer of seed s's autoencoder is not its VAE's
    ``fc1``, as it was when both were built right after seeding with s itself."""

    def first_layers(ae_seed: int, vae_seed: int) -> tuple:
        seed_everything(ae_seed)
        ae = Autoencoder(AEConfig(hidden=16, latent=2))
        seed_everything(vae_seed)
        vae = VAE(VAEConfig(hidden=16, latent=2))
        return next(ae.parameters()).detach(), vae.fc1.weight.detach()

    same_seed = first_layers(100, 100)
    assert same_seed[0].shape == same_seed[1].shape and (same_seed[0] == same_seed[1]).all()
    ae_weights, vae_weights = first_layers(stream_seed(100, 0), stream_seed(100, 1))
    assert not (ae_weights == vae_weights).any()
    assert len({stream_seed(s, k) for s in range(100, 130) for k in (0, 1)}) == 60


# --- the pooled conclusion -----------------------------------------------------------------


def jeffreys_by_hand(k: float, n: float) -> tuple[float, float]:
    """The Beta(k + 1/2, n - k + 1/2) quantiles by summing its density on a fine grid."""
    x = np.linspace(0, 1, 2_000_001)[1:-1]
    log_density = (k - 0.5) * np.log(x) + (n - k - 0.5) * np.log1p(-x)
    cdf = np.cumsum(np.exp(log_density - log_density.max()))
    cdf /= cdf[-1]
    low = 0.0 if k == 0 else float(x[np.searchsorted(cdf, 0.025)])
    high = 1.0 if k == n else float(x[np.searchsorted(cdf, 0.975)])
    return low, high


@pytest.mark.parametrize("outcome", [(0, 10), (10, 10), (5, 10), (9, 10), (8, 10), (21, 30), (2.5, 4), (13, 13)])
def test_the_jeffreys_interval_of_known_shares(outcome):
    assert robustness.jeffreys(*outcome) == pytest.approx(jeffreys_by_hand(*outcome), abs=2e-4)


@pytest.mark.parametrize(
    ("low", "high", "label"),
    [(0.5001, 0.75, "holds"), (0.5, 0.9, "undetermined"), (0.6, 0.7499, "undetermined"), (0.1, 0.4999, "does not hold"),
     (0.1, 0.5, "undetermined"), (0.3, 0.55, "undetermined"), (0.0, 0.28, "does not hold")],
)  # fmt: skip
def test_labels_at_their_boundaries(low, high, label):
    assert robustness.label(low, high) == label


def separation_table(aes: list[tuple[float, float]], vaes: list[tuple[float, float]]) -> pd.DataFrame:
    """A table whose models have these (silhouette, 5-NN accuracy): claim 14's two measures."""
    t = table([ae_row(s) for s in range(len(aes))], [vae_row(s) for s in range(len(vaes))])
    t[["silhouette", "knn_accuracy"]] = np.array(aes + vaes)
    return t


def test_a_pooled_interval_stands_on_the_effective_draws_worked_out_by_hand():
    """Claim 14 holds where the VAE beats the AE on both measures. A checkerboard (AEs 0 and 1
    alternate, VAEs too: each pair holds or not whatever its models do elsewhere) has no model
    effect, so all 16 pairs count; outcomes set by the VAE alone count its 6 VAEs, not 18 pairs."""
    key = "vae_clusters_more_distinct"
    checkerboard = separation_table([(0.0, 0.2), (0.2, 0.0)] * 2, [(0.1, 0.3), (0.3, 0.1)] * 2)
    pool = robustness.Pool.of(checkerboard, PCA, 3)
    assert pool.pairs[key].tolist() == [[(i + j) % 2 == 0 for j in range(4)] for i in range(4)]
    p = robustness.pooled(pool, key)
    assert (p.share, p.n) == (0.5, 16.0)
    assert (p.low, p.high) == pytest.approx(robustness.jeffreys(8, 16))
    by_vae = separation_table([(0.1, 0.1)] * 3, [(0.0, 0.0), (0.2, 0.2)] * 3)
    assert robustness.Pool.of(by_vae, PCA, 3).effective(key) == pytest.approx(6)


def test_a_pool_with_one_vae_or_one_set_of_autoencoders_falls_back_to_its_disjoint_draws():
    """Nothing measures how much draws share where a kind has one model: no NaN reaches the
    metrics, and the study's procedure is as likely to print any verdict as another."""
    t = separation_table([(0.0, 0.2), (0.2, 0.0), (0.1, 0.1)], [(0.1, 0.3)])
    claims = robustness.analyse(t, PCA, 3)["claims"]
    pooled = claims["vae_clusters_more_distinct"]
    assert pooled["n"] == 1 and 0 < pooled["share"] < 1 and math.isfinite(pooled["low"])
    assert claims["vae_more_compact"]["printed"] == [[k, 0.25] for k in range(4)]


def test_a_crossed_designs_effective_draws_count_what_the_outcomes_depend_on():
    rng = np.random.default_rng(0)

    def effective(outcomes: np.ndarray) -> float:
        draw, variance = robustness.crossed_variance(outcomes.astype(float))
        return draw / variance

    by_vae = np.tile(np.arange(11) % 2 == 0, (13, 1))  # the VAE decides: 11 draws, the AEs add none
    by_ae = np.tile((np.arange(13) % 2 == 0)[:, None], (1, 11))
    assert effective(by_vae) == pytest.approx(11) and effective(by_ae) == pytest.approx(13)
    assert effective(rng.random((13, 11)) < 0.5) > 13 * 11 / 2  # every pair on its own: near every pair


def test_sets_of_autoencoders_have_jackknifed_effective_draws():
    sets = list(combinations(range(13), 3))
    one_model = np.array([0 in t for t in sets], dtype=float)  # holds with autoencoder 0 alone
    rng = np.random.default_rng(1)
    independent = (rng.random(len(sets)) < 0.5).astype(float)

    def effective(outcomes: np.ndarray) -> float:
        p = outcomes.mean()
        return p * (1 - p) / robustness.jackknife_variance(outcomes, 13, 3)

    assert effective(one_model) < 13 // 3 and effective(independent) > 13  # below and above the disjoint sets


# --- the study's procedure as a distribution -----------------------------------------------


def test_a_count_of_runs_follows_the_measures_margin_and_is_never_certain():
    """13 of 13 autoencoders beat PCA in both tables; by 30 standard deviations all three runs
    of the study's procedure do, near the threshold any count can be printed."""
    rng = np.random.default_rng(0)

    def chances(sd: float, mean: float) -> dict:
        aes = [ae_row(s, silhouette=mean + sd * rng.standard_normal()) for s in range(13)]
        return robustness.simulated(table(aes, [vae_row(0)]), PCA, "ae_separates_better_than_pca", 3)

    wide, near = chances(0.001, PCA["silhouette"] + 0.03), chances(0.01, PCA["silhouette"] + 0.001)
    for c in (wide, near):
        assert sum(c.values()) == pytest.approx(1) and all(v > 0 for v in c.values())
    assert wide[3] > 0.99 and wide[3] < 1
    assert all(near[k] > 0.05 for k in range(4))


def test_new_models_carry_the_pools_uncertainty_about_its_mean():
    """Ten models: a new model's mean is drawn from N(mean, cov / 10) first, its covariance from
    the inverse Wishart (mean 9/7 of the sample's), so many models of one simulation average to
    a mean that moves between simulations by about sqrt(9/7/10) sample standard deviations."""
    rows = pd.DataFrame({"silhouette": np.random.default_rng(2).normal(0.05, 0.01, 10)})
    drawn = robustness.new_models(rows, ["silhouette"], 1000, np.random.default_rng(3))[:, :, 0]
    moves = drawn.mean(axis=1).std() / rows["silhouette"].std()
    assert drawn.shape == (robustness.SIMULATIONS, 1000) and 0.3 < moves < 0.42


def test_one_vae_against_three_autoencoders_prints_all_or_nothing():
    """The study's three runs share its one VAE: with the autoencoders alike, the VAE beats all
    three or none, far more often than three independent draws at the same share would."""
    aes = [ae_row(s, code_std=4.0) for s in range(10)]
    t = table(aes, [vae_row(0, code_std=1.0), vae_row(1, code_std=7.0), vae_row(2, code_std=2.0)])
    chances = robustness.simulated(t, PCA, "vae_more_compact", 3)
    assert chances[3] + chances[0] > 0.99 and min(chances[3], chances[0]) > 0.2
    assert chances[3] > 2 * binom.pmf(3, 3, chances[3] + chances[2] / 3)


@pytest.mark.parametrize("key", sorted(robustness.SIMULATED))
def test_a_simulated_claims_rule_reads_its_listed_measures_alone(key):
    """Every other measure of every model unknown (NaN, which fails every comparison): the claim's
    outcome on each draw is the same."""
    t = mixed_table()
    t.loc[t["kind"] == "vae", "knn_accuracy"] = 0.8  # so the VAE's clusters are more distinct in some draws
    listed = {*robustness.SIMULATED[key], "kind", "seed", "source"}
    unknown = t.copy()
    unknown[[c for c in t.columns if c not in listed]] = np.nan
    before, after = (robustness.Pool.of(frame, PCA, 3).draws(key) for frame in (t, unknown))
    assert before.any() and (before == after).all()


def test_predictive_sets_take_the_likeliest_verdicts_first():
    chances = {3: 0.6, 2: 0.3, 1: 0.08, 0: 0.02}
    assert robustness.predictive_set(chances, 0.6) == [3]
    assert robustness.predictive_set(chances, 0.61) == [3, 2]
    assert robustness.predictive_set(chances, 0.95) == [3, 2, 1]
    assert robustness.predictive_set(chances, 0.99) == [3, 2, 1, 0]
    assert robustness.predictive_set({True: 0.5, False: 0.5}, 0.5) == [False]  # a tie: one order, always


def test_every_claim_has_a_95_percent_set_of_printable_verdicts():
    result = robustness.analyse(mixed_table(), PCA, 3)
    assert set(result["claims"]) == set(robustness.DESIGNS)
    for claim in result["claims"].values():
        chances = dict(map(tuple, claim["printed"]))
        assert set(claim["set95"]) <= set(chances) and all(c > 0 for c in chances.values())
        assert sum(chances[o] for o in claim["set95"]) >= 0.95
    assert "check" not in result  # `make check` reads no predictive set


def test_label_counts_and_disagreements():
    held = robustness.Standing("holds", {"label": "holds"}, 0.5)
    assert robustness.label_counts([held, robustness.Standing("exact"), None]) == {
        "holds": 1, "does_not_hold": 0, "undetermined": 0, "exact": 1, "one_draw": 0, "not_measured": 1
    }  # fmt: skip

    def v(outcome, runs=None):
        return verdicts.Verdict("k", "", "", "", "", outcome, runs)

    assert robustness.disagrees(v(2, 3), held) and not robustness.disagrees(v(3, 3), held)
    against = robustness.Standing("does not hold", {}, 0.5)
    assert robustness.disagrees(v(True), against) and robustness.disagrees(v(1, 3), against)
    assert not robustness.disagrees(v(0, 3), against) and not robustness.disagrees(v(True), None)
    assert not robustness.disagrees(v(2, 3), robustness.Standing("undetermined", {}, 0.5))
