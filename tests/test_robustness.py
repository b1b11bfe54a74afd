"""The verdicts over fresh seeds: the interval, the labels, the study's chance, each claim's rule
per seed, and every headline metric's unit of spread."""

import copy
import math

import pytest

from stages.lib import reproduction, robustness, verdicts
from stages.lib.robustness import SeedRun
from stages.lib.study_code import GRID_KEY
from tests.test_verdicts import judge_metrics, samples_metrics

# Wilson's score interval, two-sided 95% (z = 1.95996), no continuity correction, worked by hand:
# centre (p + z^2 / 2n) / (1 + z^2 / n), half-width z / (1 + z^2 / n) sqrt(p (1 - p) / n + z^2 / 4n^2).
WILSON = {
    (0, 10): (0.0, 0.2775),
    (10, 10): (0.7225, 1.0),
    (5, 10): (0.2366, 0.7634),
    (9, 10): (0.5958, 0.9821),
    (8, 10): (0.4902, 0.9433),
    (21, 30): (0.5212, 0.8334),
}


@pytest.mark.parametrize(("outcome", "interval"), WILSON.items())
def test_the_wilson_interval_of_known_shares(outcome, interval):
    assert robustness.wilson(*outcome) == pytest.approx(interval, abs=5e-5)


@pytest.mark.parametrize(
    ("outcome", "label"),
    [((0, 10), "solid against"), ((10, 10), "solid"), ((5, 10), "fragile"), ((9, 10), "solid"),
     ((8, 10), "fragile"), ((3, 10), "fragile"), ((21, 30), "solid"), ((1, 1), "fragile")],
)  # fmt: skip
def test_labels_follow_the_interval(outcome, label):
    assert robustness.label(*robustness.wilson(*outcome)) == label


def test_the_chance_of_the_studys_three_runs():
    assert robustness.study_chance(0.5, 2, 3) == pytest.approx(3 / 8)
    assert robustness.study_chance(0.9, 3, 3) == pytest.approx(0.9**3)
    assert robustness.study_chance(0.9, 0, 3) == pytest.approx(0.1**3)
    assert robustness.study_chance(0.7, True, None) == 0.7
    assert robustness.study_chance(0.7, False, None) == pytest.approx(0.3)


PCA = {"silhouette": 0.02, "test_mse": 0.055}


def run(
    seed: int, silhouette: float = 0.05, test_mse: float = 0.04, spread: float = 5.0, vae_sil: float = 0.1
) -> SeedRun:
    """A fresh seed's measures in the shapes of the study's metrics files."""
    judge = judge_metrics()
    recon = judge["reconstructions"]
    recon[f"ae_seed_{seed}"] = recon.pop("ae_seed_1")
    for stale in ("ae_seed_2", "ae_seed_3"):
        del recon[stale]
    return SeedRun(
        seed=seed,
        ae={"test_mse": test_mse, "silhouette": silhouette, "knn_accuracy": 0.7, "code_std": [5.0, 5.0]},
        vae={"silhouette": vae_sil, "knn_accuracy": 0.75, "code_std": [1.0, 1.0]},
        judge=judge,
        samples=samples_metrics(),
    )


def test_outcomes_count_per_seed_and_per_triple():
    runs = [run(100, silhouette=0.05), run(101, silhouette=0.01), run(102, silhouette=0.03), run(103)]
    counts = robustness.outcomes(runs, PCA)
    assert counts["ae_separates_better_than_pca"] == {"holds": 3, "of": 4}  # only 0.01 is below 0.02
    assert counts["ae_reconstructs_better_than_pca"] == {"holds": 4, "of": 4}
    assert counts["vae_clusters_more_distinct"] == {"holds": 4, "of": 4}  # a pair per seed
    assert counts["runs_differ_notably"] == {"holds": 1, "of": 1}  # one triple of four seeds
    keys = {v.key for v in verdicts.all_verdicts((1,), *study_args(runs[0]))}
    assert set(counts) == keys - set(robustness.ONE_DRAW) - set(robustness.EXACT)


def study_args(r: SeedRun) -> tuple:
    """all_verdicts' arguments for a study whose one autoencoder and VAE are ``r``'s."""
    judge = copy.deepcopy(r.judge)
    judge["reconstructions"]["ae_seed_1"] = judge["reconstructions"].pop(f"ae_seed_{r.seed}")
    rows = [{"latent": 2, "ae_test": 0.04, "pca_test": 0.05}, {"latent": 3, "ae_test": 0.03, "pca_test": 0.04}]
    sweep = {"elbow": {"ae": 10, "pca": 15}}
    return {1: r.ae}, {**PCA, "refit_identical": True}, sweep, rows, r.vae, r.samples, judge


@pytest.mark.parametrize("variant", range(4))
def test_each_seeds_rule_is_its_verdicts_rule(variant):
    """On one seed, every per-seed outcome is what the report's own verdict says of a study
    made of that seed alone: the rule is the verdict's function, not a copy of it."""
    r = run(100 + variant, silhouette=0.01 * variant, test_mse=0.05 + 0.004 * variant, vae_sil=0.02 * variant)
    if variant % 2:
        r.judge["grids"]["ae"].update(sharpness_ratio=0.7, confidence=0.95)
        r.judge["grids"][GRID_KEY]["class_entropy"] = 2.0
        r.samples["class_share_gap"]["max_z"] = 4.0
    counts = robustness.outcomes([r], PCA)
    for v in verdicts.all_verdicts((1,), *study_args(r)):
        if v.key in counts and v.key not in ("runs_differ_notably", "compressed_run_overlaps_expansive_run_separates"):
            assert counts[v.key]["holds"] == robustness.holds(v), v.key


def test_a_changed_verdict_rule_changes_the_count(monkeypatch):
    runs = [run(100), run(101)]
    before = robustness.outcomes(runs, PCA)["ae_separates_better_than_pca"]
    flipped = verdicts.ae_separates_better

    def opposite(seeds, ae, pca):
        return flipped(seeds, {s: {**m, "silhouette": -m["silhouette"]} for s, m in ae.items()}, pca)

    monkeypatch.setattr(verdicts, "ae_separates_better", opposite)
    assert robustness.outcomes(runs, PCA)["ae_separates_better_than_pca"]["holds"] == 2 - before["holds"]


def test_standing_and_labels_of_every_kind_of_claim():
    counts = {"ae_separates_better_than_pca": {"holds": 9, "of": 10}, "vae_more_compact": {"holds": 5, "of": 10}}
    assert robustness.standing("pca_deterministic", counts).label == "exact"
    assert robustness.standing("ae_elbow_near_10", counts).label == "one draw"
    assert robustness.standing("samples_recognisable", counts) is None
    r = robustness.standing("ae_separates_better_than_pca", counts)
    assert (r.label, r.share) == ("solid", 0.9) and (r.low, r.high) == pytest.approx(WILSON[(9, 10)], abs=5e-5)
    keys = ["ae_separates_better_than_pca", "vae_more_compact", "pca_deterministic", "samples_recognisable"]
    assert robustness.labels(counts, keys) == dict(
        zip(keys, ["solid", "fragile", "exact", "not measured"], strict=True)
    )
    judged = [robustness.standing(k, counts) for k in keys]
    assert robustness.label_counts(judged) == {
        "solid": 1, "solid_against": 0, "fragile": 1, "exact": 1, "one_draw": 0, "not_measured": 1
    }  # fmt: skip


def headline_metrics(instrument: dict | None = None) -> dict:
    """Hand-made metrics files whose every spread is known."""
    ae = {
        f"ae/seed_{s}": {"test_mse": mse, "silhouette": sil, "knn_accuracy": knn}
        for s, mse, sil, knn in ((1, 1.0, 0.1, 0.5), (2, 2.0, 0.2, 0.6), (3, 3.0, 0.3, 0.7))
    }  # std: 1, 0.1, 0.1; the test MSE's relative spread is 1 / 2
    sets = {"a": {"confidence": 0.8, "class_entropy": 2.0, "frechet": 10.0},
            "b": {"confidence": 0.9, "class_entropy": 2.2, "frechet": 14.0}}  # fmt: skip
    return {
        **ae,
        "pca": {"test_mse": 0.05, "silhouette": 0.02},
        "sweep": {"elbow": {"ae": 8, "pca": 12}},
        "vae": {"test_loss": 150.0, "test_mse": 0.06, "silhouette": 0.03, "knn_accuracy": 0.7},
        "judge": {"reconstructions": {"vae": {"prior_kl": 0.2}}},
        "samples": {"vae": {"confidence": 0.85, "class_entropy": 2.1, "frechet": 12.0}, "vae_sets": sets},
        "classifier": {"test_accuracy": 0.99},
        "robustness": {
            "instrument": instrument or {"classifiers": 1, "confidence": 0, "class_entropy": 0, "frechet": 0}
        },
    }


def test_every_headline_unit_family_by_family():
    sets = math.sqrt(2) / 2  # the std of two values d apart is d / sqrt(2)
    expected = {
        "AE seed 1: test MSE": 1.0, "AE seed 2: silhouette": 0.1, "AE seed 3: 5-NN accuracy": 0.1,
        "PCA: test MSE": 0.05e-3, "PCA: silhouette": 0.1,
        "sweep: AE elbow": 1, "sweep: PCA elbow": 1,
        "VAE: test loss": 1.5, "VAE: test MSE": 0.03, "VAE: silhouette": 0.1, "VAE: 5-NN accuracy": 0.1,
        "VAE: prior KL of the codes": 0.02,
        "samples: confidence": 0.1 * sets, "samples: class entropy": 0.2 * sets, "samples: Frechet distance": 4 * sets,
        "classifier: test accuracy": 1e-3,
    }  # fmt: skip
    units = {name: h.unit for name, h in reproduction.headline(headline_metrics(), (1, 2, 3)).items()}
    assert {name: units[name] for name in expected} == pytest.approx(expected, rel=1e-9)
    assert len(units) == 3 * 3 + 13  # the three per-seed rows of each seed, and the rest


def test_the_classifiers_spread_adds_to_the_sample_sets_in_quadrature():
    instrument = {"classifiers": 3, "confidence": 0.1 * math.sqrt(2) / 2, "class_entropy": 0.0, "frechet": 3.0}
    units = {n: h.unit for n, h in reproduction.headline(headline_metrics(instrument), (1, 2, 3)).items()}
    assert units["samples: confidence"] == pytest.approx(0.1)  # two equal parts: sqrt(2) times either
    assert units["samples: class entropy"] == pytest.approx(0.2 * math.sqrt(2) / 2)
    assert units["samples: Frechet distance"] == pytest.approx(math.hypot(4 * math.sqrt(2) / 2, 3.0))


def test_a_fragile_flip_is_expected_and_a_solid_one_fails():
    ref = reproduction.record("mnist", {"a": True, "b": 3, "c": False}, {})
    c = reproduction.Comparison(ref, {"a": False, "b": 2, "c": False}, {}, {"a": "fragile", "b": "solid"})
    assert [k for k, *_ in c.differing_verdicts] == ["a", "b"] and [k for k, *_ in c.failing_verdicts] == ["b"]
    lines = reproduction.verdict_lines(c, "mnist")
    assert "Verdict a differs: True in the reference, False here (fragile over fresh seeds, so expected " in lines[1]
    assert "(solid over fresh seeds, so a real difference)" in lines[2]
    assert c.summary()["verdicts_differing_but_fragile"] == 1
