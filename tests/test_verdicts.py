"""Every verdict rule on small hand-made metrics whose answer is known: holds, does not hold,
and a tie (which never counts as holding: the study's claims are strict comparisons)."""

import pytest

from stages.lib import verdicts as v
from stages.lib.study_code import GRID_KEY

SEEDS = (1, 2, 3)


def ae_metrics(silhouettes=(0.1, 0.2, 0.3), mses=(0.040, 0.041, 0.042), code_stds=(1.0, 2.0, 3.0), knn=0.7):
    return {
        s: {"silhouette": sil, "test_mse": mse, "code_std": [code_std, code_std], "knn_accuracy": knn}
        for s, sil, mse, code_std in zip(SEEDS, silhouettes, mses, code_stds, strict=True)
    }


def judge_metrics(ae_acc=0.8, ae_sharp=0.6, pca_sharp=0.4, vae_kl=0.1, ae_kl=5.0):
    recon = {
        f"ae_seed_{s}": {"classifier_accuracy": ae_acc, "sharpness_ratio": ae_sharp, "prior_kl": ae_kl} for s in SEEDS
    }
    recon["pca"] = {"classifier_accuracy": 0.5, "sharpness_ratio": pca_sharp, "prior_kl": 1.0}
    recon["vae"] = {"classifier_accuracy": 0.7, "sharpness_ratio": 0.5, "prior_kl": vae_kl}
    grid = {"sharpness_ratio": 0.5, "confidence": 0.9, "distinct_classes": 6, "class_entropy": 1.5,
            "neighbour_distance": 0.1, "class_change_rate": 0.3}  # fmt: skip
    return {"reconstructions": recon, "grids": {k: dict(grid) for k in ("ae", "vae", GRID_KEY)}}


def samples_metrics(confidences=(0.9,) * 5, entropies=(2.2,) * 5, frechets=(800.0,) * 5, max_z=1.0):
    sets = {
        f"sampling_seed_{i}": {"confidence": c, "class_entropy": e, "frechet": f}
        for i, (c, e, f) in enumerate(zip(confidences, entropies, frechets, strict=True))
    }
    return {"vae_sets": sets, "class_share_gap": {"max": 0.01, "max_z": max_z}}


def test_runs_differ_when_either_spread_is_notable():
    assert v.runs_differ(SEEDS, ae_metrics(silhouettes=(0.1, 0.1, 0.1), mses=(1.0, 1.0, 1.0))).outcome is False
    assert v.runs_differ(SEEDS, ae_metrics(silhouettes=(0.1, 0.1, 0.1), mses=(1.0, 1.0, 1.2))).outcome is True
    assert v.runs_differ(SEEDS, ae_metrics(mses=(1.0, 1.0, 1.0))).outcome is True


def test_the_widest_run_must_separate_best_and_the_narrowest_worst():
    assert v.width_matches_separation(SEEDS, ae_metrics()).outcome is True
    assert v.width_matches_separation(SEEDS, ae_metrics(code_stds=(3.0, 2.0, 1.0))).outcome is False
    assert v.width_matches_separation(SEEDS, ae_metrics(silhouettes=(0.1, 0.3, 0.2))).outcome is False


def test_recognisable_but_blurred_counts_runs():
    assert v.recognisable_but_blurred(SEEDS, judge_metrics()).outcome == 3
    assert v.recognisable_but_blurred(SEEDS, judge_metrics(ae_acc=0.4)).outcome == 0
    assert v.recognisable_but_blurred(SEEDS, judge_metrics(ae_sharp=1.0)).outcome == 0  # a tie is not blurred
    judge = judge_metrics()
    judge["reconstructions"]["ae_seed_2"]["sharpness_ratio"] = 1.2
    verdict = v.recognisable_but_blurred(SEEDS, judge)
    assert verdict.outcome == 2 and verdict.text == "holds in 2 of 3 runs"


def test_pca_blurrier_than_the_autoencoder():
    assert v.pca_blurrier(SEEDS, judge_metrics()).text == "holds in all 3 runs"
    assert v.pca_blurrier(SEEDS, judge_metrics(pca_sharp=0.6)).text == "holds in no run"  # a tie


def test_autoencoder_against_pca_per_seed():
    ae, pca = ae_metrics(), {"silhouette": 0.2, "test_mse": 0.041}
    assert v.ae_separates_better(SEEDS, ae, pca).outcome == 1  # only 0.3 > 0.2; 0.2 ties
    assert v.ae_reconstructs_better(SEEDS, ae, pca).outcome == 1  # only 0.040 < 0.041


def test_pca_determinism_is_read_from_the_pipeline():
    assert v.pca_deterministic({"refit_identical": True}).text == "holds"
    assert v.pca_deterministic({"refit_identical": False}).text == "does not hold"


def sweep_rows(ae, pca):
    return [{"latent": k, "ae_test": a, "pca_test": p} for k, a, p in zip(range(2, 2 + len(ae)), ae, pca, strict=True)]


def test_below_at_every_size_and_falling_faster():
    rows = sweep_rows([0.04, 0.03, 0.02, 0.015], [0.05, 0.045, 0.04, 0.035])
    assert v.ae_below_pca_everywhere(rows).outcome is True
    assert v.ae_falls_faster(rows).outcome is True  # 25% against 10% from size 2 to 3
    rows[-1]["ae_test"] = 0.035  # a tie at the last size
    assert v.ae_below_pca_everywhere(rows).outcome is False
    assert v.ae_falls_faster(sweep_rows([0.04, 0.036, 0.03, 0.02], [0.05, 0.04, 0.03, 0.02])).outcome is False


@pytest.mark.parametrize(
    ("elbow", "holds"), [(10, True), (12, True), (8, True), (13, False), (7, False), (None, False)]
)
def test_an_elbow_is_near_within_two_sizes(elbow, holds):
    assert v.elbow_near("ae", elbow, 10, "k").outcome is holds


def test_grid_rules():
    judge = judge_metrics()
    assert not v.ae_grid_clearer(judge).outcome  # all equal: no claim holds on a tie
    assert not v.vae_grid_more_varied(judge).outcome and not v.vae_grid_smoother(judge).outcome
    judge["grids"]["ae"].update(sharpness_ratio=0.7, confidence=0.95, distinct_classes=5)
    judge["grids"]["vae"].update(neighbour_distance=0.05, class_change_rate=0.2)
    assert v.ae_grid_clearer(judge).outcome and v.vae_grid_more_varied(judge).outcome
    assert v.vae_grid_smoother(judge).outcome
    judge["grids"]["vae"]["class_change_rate"] = 0.4
    assert not v.vae_grid_smoother(judge).outcome


def test_the_grid_claims_are_judged_on_the_walk_and_on_the_grid_as_the_study_drew_it():
    judge = judge_metrics()
    grids = judge["grids"]
    grids["ae"].update(distinct_classes=10, class_entropy=2.0, neighbour_distance=0.05, class_change_rate=0.25)
    # The walk: all ten classes but less evenly, and steps smaller than the AE's.
    grids["vae"].update(distinct_classes=10, class_entropy=1.9, neighbour_distance=0.04, class_change_rate=0.2)
    # Independent draws: as many classes, more evenly spread, and far apart from cell to cell.
    grids[GRID_KEY].update(distinct_classes=10, class_entropy=2.2, neighbour_distance=0.12, class_change_rate=0.8)
    varied, smoother = v.vae_grid_more_varied(judge), v.vae_grid_smoother(judge)
    assert (varied.outcome, varied.on_study_grid) == (False, True)
    assert varied.text == "does not hold on the walk; holds on the study's grid"
    assert (smoother.outcome, smoother.on_study_grid) == (True, False)
    assert smoother.text == "holds on the walk; does not hold on the study's grid"
    grids["vae"]["distinct_classes"] = 9  # fewer classes: entropy no longer decides
    grids["vae"]["class_entropy"] = 2.3
    assert v.vae_grid_more_varied(judge).outcome is False
    grids[GRID_KEY]["class_entropy"] = 2.0  # a tie is not more varied
    assert v.vae_grid_more_varied(judge).on_study_grid is False


def test_vae_latent_rules():
    ae = ae_metrics(silhouettes=(0.1, 0.2, 0.3), knn=0.7)
    vae = {"code_std": [1.5, 1.5], "silhouette": 0.25, "knn_accuracy": 0.75}
    assert v.vae_more_compact(SEEDS, ae, vae).outcome == 2  # 1.5 < 2 and 3, not < 1
    assert v.vae_closer_to_prior(SEEDS, judge_metrics()).outcome == 3
    assert v.vae_closer_to_prior(SEEDS, judge_metrics(vae_kl=5.0)).outcome == 0
    assert v.vae_separates_better(SEEDS, ae, vae).outcome == 2
    assert v.vae_separates_better(SEEDS, ae, {**vae, "knn_accuracy": 0.7}).outcome == 0


def test_sample_rules():
    good = samples_metrics(max_z=4.0)
    assert all(f(good).outcome for f in (v.samples_recognisable, v.samples_varied, v.samples_differ))
    assert v.sample_quality_stable(good).outcome
    assert not v.samples_recognisable(samples_metrics(confidences=(0.9, 0.9, 0.9, 0.9, 0.79))).outcome
    assert not v.samples_varied(samples_metrics(entropies=(2.2, 2.2, 2.2, 2.2, 2.0))).outcome
    assert not v.samples_differ(samples_metrics(max_z=3.0)).outcome
    assert not v.sample_quality_stable(samples_metrics(frechets=(500.0, 800.0, 800.0, 800.0, 1100.0))).outcome


def test_every_claim_has_one_verdict_with_a_unique_key():
    ae, judge = ae_metrics(), judge_metrics()
    pca = {"silhouette": 0.0, "test_mse": 0.05, "refit_identical": True}
    rows = sweep_rows([0.04, 0.03, 0.02, 0.015], [0.05, 0.045, 0.04, 0.035])
    vae = {"code_std": [1.5, 1.5], "silhouette": 0.25, "knn_accuracy": 0.75}
    result = v.all_verdicts(SEEDS, ae, pca, {"elbow": {"ae": 10, "pca": 15}}, rows, vae, samples_metrics(), judge)
    assert len(result) == len({r.key for r in result}) == 22
    assert all(r.claim and r.measure and r.values and r.rule for r in result)
