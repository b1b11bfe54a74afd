"""The near-copy check: every measure of every model against measured arithmetic noise, one
model at a time and as a group's mean, and verdict flips judged by their margin."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as student

from stages.lib import nearcopy, replication, robustness
from tests.test_robustness import PCA, mixed_table

SWEEP = pd.DataFrame(
    {"latent": [2, 3, 4], "ae_train": [0.04, 0.03, 0.02], "ae_test": [0.041, 0.031, 0.021],
     "pca_train": [0.055, 0.05, 0.045], "pca_test": [0.056, 0.051, 0.046]}
)  # fmt: skip


def classifiers(accuracies=(0.99, 0.991, 0.989)) -> list[dict]:
    sources = ["study"] + ["fresh"] * (len(accuracies) - 1)
    return [{"kind": "classifier", "seed": i, "source": s, "test_accuracy": a}
            for i, (s, a) in enumerate(zip(sources, accuracies, strict=True))]  # fmt: skip


def run(table: pd.DataFrame | None = None, sweep: pd.DataFrame = SWEEP, pca: dict = PCA) -> nearcopy.Run:
    if table is None:
        table = pd.concat([mixed_table(), pd.DataFrame(classifiers())], ignore_index=True)
    return nearcopy.Run(table, sweep, pca)


def measure_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c not in nearcopy.IDENTITY]


def jittered(r: nearcopy.Run, scale: float, seed: int = 1) -> nearcopy.Run:
    """``r`` with every measure moved by noise of ``scale`` times the measure's spread over the
    models (relative on the sweep): another arithmetic path."""
    rng = np.random.default_rng(seed)
    table = r.table.copy()
    columns = measure_columns(table)
    spread = table.groupby("kind")[columns].transform("std").fillna(0.0).to_numpy()
    table[columns] = table[columns].astype(float) + scale * spread * rng.standard_normal((len(table), len(columns)))
    sweep = r.sweep.copy()
    measures = list(nearcopy.SWEEP_MEASURES)
    sweep[measures] = sweep[measures] * (1 + scale * rng.standard_normal((len(sweep), len(measures))))
    pca = {**r.pca, "test_mse": r.pca["test_mse"] * (1 + scale), "silhouette": r.pca["silhouette"] * (1 - scale)}
    return nearcopy.Run(table, sweep, pca)


REFERENCE = run()
NOISE = nearcopy.noise(REFERENCE.long(), jittered(REFERENCE, 0.1).long())


def with_column(r: nearcopy.Run, kind: str, column: str, change) -> nearcopy.Run:
    table = r.table.copy()
    rows = table["kind"] == kind
    table.loc[rows, column] = change(table.loc[rows, column].astype(float))
    return nearcopy.Run(table, r.sweep, r.pca)


def limit_of(mean: str) -> nearcopy.Limits:
    return nearcopy.limits(NOISE, nearcopy.mean_counts(REFERENCE.long()))[mean]


def test_every_measure_of_every_model_is_compared():
    long = REFERENCE.long()
    models = long.index.get_level_values("model")
    assert "the study ae seed 1" in models and "fresh vae seed 109" in models and "fresh classifier seed 2" in models
    assert {"sweep latent 2", "PCA"} <= set(models)
    # Every cell of the per-model table that holds a number, the sweep's four curves, PCA's measures.
    cells = int(REFERENCE.table[measure_columns(REFERENCE.table)].notna().sum().sum())
    assert len(long) == cells + 4 * len(SWEEP) + 2 + 3
    assert long.loc[("sweep latent 3", "ae_test"), "relative"] and not long.loc[("the study ae seed 1", "test_mse"),
                                                                                    "relative"]  # fmt: skip


def test_the_noise_is_the_root_mean_square_of_each_groups_differences():
    other = with_column(REFERENCE, "ae", "test_mse", lambda v: v + np.arange(len(v)) * 1e-4)
    n = nearcopy.noise(REFERENCE.long(), other.long())["ae: test_mse"]
    steps = np.arange(13) * 1e-4
    assert n["n"] == 13 and n["rms"] == pytest.approx(math.sqrt(np.mean(steps**2)))
    sweep = REFERENCE.sweep.assign(ae_test=REFERENCE.sweep["ae_test"] * 1.02)
    relative = nearcopy.noise(REFERENCE.long(), nearcopy.Run(REFERENCE.table, sweep, PCA).long())["sweep: ae_test"]
    assert relative["relative"] and relative["rms"] == pytest.approx(0.02)


def test_noise_from_a_run_of_other_models_is_refused_and_a_missing_model_left_out():
    others = REFERENCE.table.assign(seed=REFERENCE.table["seed"] + 1000)
    with pytest.raises(ValueError, match="not the same seeds"):
        nearcopy.noise(REFERENCE.long(), nearcopy.Run(others, SWEEP.assign(latent=SWEEP["latent"] + 100), {}).long())
    fewer = nearcopy.noise(REFERENCE.long(), nearcopy.Run(REFERENCE.table.iloc[1:], SWEEP, PCA).long())
    assert fewer["ae: test_mse"]["n"] == 12


def test_combined_noise_takes_each_groups_largest_on_the_differences_of_every_source_of_its_size():
    a = {"x": {"n": 13, "rms": 1.0}, "y": {"n": 11, "rms": 2.0}, "z": {"n": 13, "rms": 0.0}}
    b = {"x": {"n": 13, "rms": 1.2}, "y": {"n": 11, "rms": 6.0}, "z": {"n": 13, "rms": 0.3}}
    c = {"x": {"n": 3, "rms": 0.9}}
    both = nearcopy.combined([a, b, c])
    # 1.2 and 1.0 on 13 differences each are one size (F = 1.44, one-sided p = 0.26): 29 differences.
    assert both["x"] == {"n": 29, "rms": 1.2, "sources": 3}
    # A noise three times as large (F = 9, p = 0.0005), or any against none, is another size.
    assert both["y"] == {"n": 11, "rms": 6.0, "sources": 1}
    assert both["z"] == {"n": 13, "rms": 0.3, "sources": 1}
    assert nearcopy.combined([a])["y"] == {"n": 11, "rms": 2.0, "sources": 1}


@pytest.mark.parametrize(("larger", "pooled"), [(1.55, True), (1.66, False)])
def test_combined_noise_pools_on_either_side_of_the_f_tests_level(larger, pooled):
    """On 13 differences each, the one-sided F-test at 5% parts the sizes at a ratio of 1.605:
    1.55 gives p = 0.063, 1.66 gives p = 0.039."""
    both = nearcopy.combined([{"x": {"n": 13, "rms": 1.0}}, {"x": {"n": 13, "rms": larger}}])["x"]
    assert both == {"n": 26 if pooled else 13, "rms": larger, "sources": 2 if pooled else 1}


def test_limits_are_t_quantiles_of_the_noise_at_the_groups_share_of_the_budget():
    groups = REFERENCE.long().groupby("group").size().to_dict()
    counts = nearcopy.mean_counts(REFERENCE.long())
    # Every group's mean, and the study's where it has some of a kind's models but not all; a
    # count has none (two study models one step each would fail a mean over three).
    study = {m: k for m, k in counts.items() if m not in groups}
    assert study == {f"the study's {g}": 3 for g in groups if g.startswith("ae: ") and g != "ae: grid_distinct_classes"}
    lim = nearcopy.limits(NOISE, counts)
    rms, singles, means = NOISE["ae: test_mse"]["rms"], sum(groups.values()), len(groups) + len(study)
    assert lim["ae: test_mse"].model == pytest.approx(student.isf(0.025 / singles / 2, 13) * rms)
    t_mean = student.isf(0.025 / means / 2, 13)
    assert lim["ae: test_mse"].mean == pytest.approx(t_mean * rms / math.sqrt(groups["ae: test_mse"]))
    assert lim["the study's ae: test_mse"].mean == pytest.approx(t_mean * rms / math.sqrt(3))
    assert lim["the study's ae: test_mse"].model == lim["ae: test_mse"].model
    # A count moves by whole steps: one step is always within tolerance, whatever the noise; its
    # mean by net steps at the mean's share of the budget.
    count = {"n": 13, "rms": 0.0}
    lim = nearcopy.limits({"ae: grid_distinct_classes": count}, {"ae: grid_distinct_classes": 13})
    assert lim["ae: grid_distinct_classes"].model == 1.0
    assert lim["ae: grid_distinct_classes"].mean == nearcopy.net_steps(count, 13, 0.025) / 13
    # never below one model's one step, which the model's limit allows: k=1, hardly a chance
    one = nearcopy.limits({"vae: grid_distinct_classes": {"n": 5000, "rms": 0.0}}, {"vae: grid_distinct_classes": 1})
    assert nearcopy.net_steps({"n": 5000, "rms": 0.0}, 1, 0.025) == 0 and one["vae: grid_distinct_classes"].mean == 1


@pytest.mark.parametrize(("steps", "n", "k"), [(1, 13, 13), (0, 55, 11), (3, 20, 13)])
def test_a_counts_mean_may_move_the_net_steps_its_measured_moves_make_likely(steps, n, k):
    """Drawn as net_steps describes them (a chance from the Jeffreys posterior on the measured
    moves, that many of k models moving, each up or down alike), the net moves beyond net_steps
    have a chance of at most alpha, and beyond one step fewer more than alpha."""
    alpha, rng = 0.05, np.random.default_rng(0)
    net = nearcopy.net_steps({"n": n, "rms": math.sqrt(steps / n)}, k, alpha)
    movers = rng.binomial(k, rng.beta(steps + 0.5, n - steps + 0.5, 400_000))
    moved = np.abs(2 * rng.binomial(movers, 0.5) - movers)
    assert np.mean(moved > net) <= alpha < np.mean(moved > net - 1)


def test_the_reference_against_itself_moves_nothing():
    r = nearcopy.compare(REFERENCE, REFERENCE, NOISE, 3)
    assert r.passes and all(m.units == 0 for m in r.moves) and not r.flips


def test_another_arithmetic_path_passes():
    """Noise of the same size as the one measured, drawn again: a faithful rerun."""
    for seed in (2, 3, 4, 5, 6):
        assert nearcopy.compare(REFERENCE, jittered(REFERENCE, 0.1, seed), NOISE, 3).passes


@pytest.mark.parametrize(("factor", "passes"), [(0.99, True), (1.01, False)])
def test_one_models_move_fails_beyond_its_tolerance_and_not_within(factor, passes):
    lim = limit_of("ae: silhouette").model
    table = REFERENCE.table.copy()
    table.loc[0, "silhouette"] += factor * lim
    r = nearcopy.compare(REFERENCE, nearcopy.Run(table, SWEEP, PCA), NOISE, 3)
    assert not r.failing_groups  # one model of 13: its group's mean stays within
    assert [(m.model, m.measure) for m in r.failing_moves] == (
        [] if passes else [("the study ae seed 1", "silhouette")]
    )


def test_a_small_move_of_every_model_fails_on_the_groups_mean():
    lim = limit_of("ae: test_mse")
    shift = 2 * lim.mean
    assert shift < lim.model  # no single model beyond its own tolerance
    r = nearcopy.compare(REFERENCE, with_column(REFERENCE, "ae", "test_mse", lambda v: v + shift), NOISE, 3)
    assert not r.failing_moves and [g.group for g in r.failing_groups] == ["ae: test_mse"]


@pytest.mark.parametrize(("factor", "passes"), [(0.95, True), (1.5, False)])
def test_a_move_of_the_study_autoencoders_alone_fails_on_the_studys_mean(factor, passes):
    """A slip in train_ae.py moves the study's three autoencoders and no fresh one: below one
    model's tolerance and diluted in the mean of all, it fails on the study's own mean, beyond
    its tolerance and not within."""
    study, every = limit_of("the study's ae: test_mse"), limit_of("ae: test_mse")
    shift = factor * study.mean
    assert shift < every.model and shift * study.k / every.k < every.mean
    table = REFERENCE.table.copy()
    table.loc[(table["kind"] == "ae") & (table["source"] == "study"), "test_mse"] += shift
    r = nearcopy.compare(REFERENCE, nearcopy.Run(table, SWEEP, PCA), NOISE, 3)
    assert not r.failing_moves
    assert [g.group for g in r.failing_groups] == ([] if passes else ["the study's ae: test_mse"])


def pca_silhouette_flip(reference_margin: float, move: float) -> nearcopy.Result:
    """The study's first autoencoder's silhouette ``reference_margin`` tolerances above PCA's (its
    rule's threshold) in the reference, and ``move`` tolerances lower in the rerun."""
    lim = limit_of("ae: silhouette").model
    table = REFERENCE.table.copy()
    table.loc[0, "silhouette"] = PCA["silhouette"] + reference_margin * lim
    reference = nearcopy.Run(table, SWEEP, PCA)
    moved = table.copy()
    moved.loc[0, "silhouette"] -= move * lim
    return nearcopy.compare(reference, nearcopy.Run(moved, SWEEP, PCA), NOISE, 3)


def test_a_flip_near_the_threshold_passes():
    r = pca_silhouette_flip(0.5, 0.9)
    flips = [f for f in r.flips if f.claim == "ae_separates_better_than_pca"]
    assert [(f.draw, f.reference, f.now, f.near_threshold) for f in flips] == [
        ("the study ae seed 1", True, False, True)
    ]
    assert r.passes


def test_a_flip_beyond_the_rules_margin_fails_naming_the_claim_and_the_model():
    r = pca_silhouette_flip(3.0, 4.0)
    assert ("ae_separates_better_than_pca", "the study ae seed 1") in [(f.claim, f.draw) for f in r.failing_flips]
    # Any other flip beyond its margin reads the same moved model (its pairs with the VAEs).
    assert all(f.draw.startswith("the study ae seed 1") for f in r.failing_flips)
    assert not r.passes


def test_every_design_names_its_draws_in_the_pools_order():
    pool = robustness.Pool.of(REFERENCE.table, PCA, 3)
    names = nearcopy._draw_names(REFERENCE.table, 3)
    for key, design in robustness.DESIGNS.items():
        assert len(names[design]) == pool.draws(key).size, key
    assert names["vae_against_each_ae"][1] == "the study ae seed 1 with fresh vae seed 100"


# --- other seeds: pool against pool ----------------------------------------------------------


def test_the_replication_test_passes_another_draw_of_the_same_recipe():
    other = pd.concat([mixed_table(seed=7), pd.DataFrame(classifiers())], ignore_index=True)
    tests = replication.compare(REFERENCE.table, other, PCA, 3)
    assert tests and not [t.name for t in tests if t.fails]


def test_the_replication_test_fails_a_shifted_pool_naming_the_measure():
    other = pd.concat([mixed_table(seed=7), pd.DataFrame(classifiers())], ignore_index=True)
    other.loc[other["kind"] == "ae", "test_mse"] += 0.005  # five seed-to-seed standard deviations
    assert [t.name for t in replication.compare(REFERENCE.table, other, PCA, 3) if t.fails] == ["ae: test_mse"]


def test_the_replication_tests_false_alarms_out_of_sample_stay_within_five_percent():
    alarms = replication.false_alarms(REFERENCE.table, PCA, 3, splits=100)
    assert alarms["splits"] == 100 and alarms["false_alarms"] <= 5


def test_the_false_alarms_of_every_split_at_once_are_the_splits_checked_one_by_one():
    """Four autoencoders whose test MSE takes two values, two models each: a split that parts
    them (a third of the splits) fails, any other passes; with a measure that one VAE lacks and
    claims whose shares differ, the count over every split at once is the count of
    :func:`replication.compare` run on each split's two halves."""
    kinds = REFERENCE.table["kind"]
    pool = pd.concat(
        [REFERENCE.table[kinds == kind].head(4) for kind in ("ae", "vae", "classifier")], ignore_index=True
    )
    ae = pool.index[pool["kind"] == "ae"]
    pool.loc[ae, "test_mse"] = [0.041, 0.041, 0.045, 0.045]
    pool.loc[pool.index[pool["kind"] == "vae"][0], "samples_frechet"] = np.nan
    counted = replication.false_alarms(pool, PCA, 3, splits=60)
    one_by_one = sum(
        any(
            t.fails
            for t in replication.compare(pool[h].reset_index(drop=True), pool[~h].reset_index(drop=True), PCA, 3)
        )
        for h in replication.halves(pool["kind"].to_numpy(), 60)
    )
    assert counted == {"splits": 60, "false_alarms": one_by_one} and 10 < one_by_one < 30


@pytest.mark.parametrize("relative_move, fails", [(1e-15, False), (1e-7, True)])
def test_a_tolerance_of_zero_lets_summation_order_pass_and_nothing_more(relative_move, fails):
    """A tiny run's noise is all but zero: a transposed grid moved a float64 measure by its last
    digits on one CPU kind, and that may not fail; a move of a float32 step still does."""
    silent = {g: {**v, "rms": 0.0} for g, v in NOISE.items()}
    moved = with_column(REFERENCE, "ae", "silhouette", lambda v: v * (1 + relative_move))
    moved = nearcopy.Run(moved.table, moved.sweep.assign(ae_test=moved.sweep["ae_test"] * (1 + relative_move)), PCA)
    result = nearcopy.compare(REFERENCE, moved, silent, 3)
    named = {m.group for m in result.failing_moves} | {nearcopy.group_of(g.group) for g in result.failing_groups}
    assert named == ({"ae: silhouette", "sweep: ae_test"} if fails else set())
