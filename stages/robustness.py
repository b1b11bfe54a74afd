"""Measure every model of the study and of the robustness layer alike, and judge how solid each
verdict is: the per-model table (one row per autoencoder and VAE: the study's own and the fresh
ones), each claim's rule over the pooled models, the chance of each verdict the study's
procedure prints (three autoencoders, one VAE), and the spread of the sample measures over
classifiers (the instrument's own). Judging only: the fresh models come from `train_fresh`.

Reads:  params.yaml (ae.seeds, vae.seed, classifier.seed, latent_grid, prior_grid, sample.score_count,
        sample.seeds, fresh.seed_count/first_seed/classifier_count), data/idx,
        models/ae/, models/vae/, models/classifier/, models/fresh/, metrics/ae/,
        metrics/vae.json, metrics/judge.json, metrics/samples.json, metrics/pca.json
        (the study's own measures, taken as its stages wrote them).
Writes: metrics/models.csv (the per-model table: every autoencoder, VAE and classifier),
        metrics/robustness.json (per claim: the pooled share, interval and label, the chance of
        each printable verdict, its 95% predictive set; the classifiers' spread; the false alarms
        of `make check`'s replication test between halves of the pool), plots/robustness/spread.png.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from stages.lib import cli, io, metrics, params, plots, replication, robustness, study, study_code
from stages.lib.data import load_data
from stages.lib.judging import Judge, prior_samples, sample_names
from stages.lib.models import load_model
from stages.lib.runtime import predict, setup

SAMPLE_STRIDE = 1000  # fresh seed s draws its sample sets from seeds 1000 s, 1000 s + 1, ...
FRESH = Path("models/fresh")


def main() -> None:
    p = params.load()
    device = setup("cpu")  # thousands of decodes and the classifier's passes: not worth a transfer
    train, test = load_data(device)
    judge = Judge.load(Path("models/classifier"), test)
    reference = predict(judge.classifier.features, test.images).numpy()  # the test images' features
    m = {name: io.read_json(Path(f"metrics/{name}.json")) for name in ("vae", "judge", "samples", "pca")}
    ae_grid, vae_grid = p.latent_grid, p.prior_grid

    rows = []
    first = p.ae.seeds[0]
    for seed in p.ae.seeds:  # the study's autoencoders as its stages measured them
        grid = m["judge"]["grids"]["ae"]
        if seed != first:  # the judge stage walks the first one's grid alone
            ae = load_model(Path(f"models/ae/seed_{seed}"))
            grid = judge.walk(ae.decode, latent=ae.config.latent, limit=ae_grid.range, cells=ae_grid.cells)
        rows.append(robustness.table_row(
            kind="ae", seed=seed, source="study", metrics=io.read_json(Path(f"metrics/ae/seed_{seed}.json")),
            reconstruction=m["judge"]["reconstructions"][f"ae_seed_{seed}"], grid=grid,
        ))  # fmt: skip
    grids = m["judge"]["grids"]
    rows.append(robustness.table_row(
        kind="vae", seed=p.vae.seed, source="study", metrics=m["vae"],
        reconstruction=m["judge"]["reconstructions"]["vae"], grid=grids["vae"], drawn=grids[study_code.GRID_KEY],
        samples=m["samples"],
    ))  # fmt: skip
    seeds = p.fresh.seed_list
    test_losses = io.read_json(FRESH / "test_losses.json") if seeds else {}
    for seed in seeds:
        ae = load_model(FRESH / f"ae_seed_{seed}").eval()
        rows.append(robustness.table_row(
            kind="ae", seed=seed, source="fresh",
            metrics={"test_mse": test_losses["ae"][str(seed)], **study.separation(ae.encode, (train, test))},
            reconstruction=judge.reconstructions(ae.encode, ae.decode),
            grid=judge.walk(ae.decode, latent=ae.config.latent, limit=ae_grid.range, cells=ae_grid.cells),
        ))  # fmt: skip
    for seed in seeds:
        vae = load_model(FRESH / f"vae_seed_{seed}").eval()
        latent = vae.config.latent

        sets = {
            f"set_{j}": prior_samples(vae.decode, latent, p.sample.score_count, SAMPLE_STRIDE * seed + j)
            for j in range(len(p.sample.seeds))
        }
        as_drawn = predict(vae.decode, study_code.prior_grid_codes(latent, vae_grid.cells, seed))
        rows.append(robustness.table_row(
            kind="vae", seed=seed, source="fresh",
            metrics={
                "test_loss": test_losses["vae"][str(seed)],
                "test_mse": study.reconstruction_mse(lambda b, vae=vae: vae.decode(vae.encode_mean(b)), test.images),
                **study.separation(vae.encode_mean, (train, test)),
            },
            reconstruction=judge.reconstructions(vae.encode_mean, vae.decode),
            grid=judge.walk(vae.decode, latent=latent, limit=vae_grid.range, cells=vae_grid.cells),
            drawn=judge.grid(as_drawn, vae_grid.cells),
            samples=judge.sample_sets(sets, reference),
        ))  # fmt: skip
    spread, accuracies = instrument(
        judge, reference, score_count=p.sample.score_count, sample_seeds=p.sample.seeds,
        classifier_seeds=p.fresh.classifier_seed_list,
    )  # fmt: skip
    # Each classifier a row of its own, so that `make check` follows each one's accuracy.
    sources = ["study"] + ["fresh"] * len(p.fresh.classifier_seed_list)
    for seed, source, accuracy in zip((p.classifier.seed, *p.fresh.classifier_seed_list), sources, accuracies,
                                      strict=True):  # fmt: skip
        rows.append({"kind": "classifier", "seed": seed, "source": source, "test_accuracy": accuracy})
    table = pd.DataFrame(rows)
    pca = {**m["pca"], "reconstruction": m["judge"]["reconstructions"]["pca"]}
    study_runs = len(p.ae.seeds)
    result = {
        "seeds": len(seeds),
        **robustness.analyse(table, pca, study_runs),
        "instrument": spread,
        "check": {"reseeded": replication.false_alarms(table, pca, study_runs)},
    }
    with io.transaction() as out:
        out.write_bytes(Path("metrics/models.csv"), table.to_csv(index=False, lineterminator="\n").encode())
        out.write_json(Path("metrics/robustness.json"), result)
        out.save_figure(Path("plots/robustness/spread.png"), plots.spread_figure(robustness.spread_panels(table, pca)))


def instrument(
    judge: Judge,
    reference: np.ndarray,
    *,
    score_count: int,
    sample_seeds: tuple[int, ...],
    classifier_seeds: tuple[int, ...],
) -> tuple[dict, list[float]]:
    """The study's own sample sets (``score_count`` images from each of ``sample_seeds``) scored
    by its classifier (``judge``, whose features of the test images are ``reference``) and by
    the fresh ones: the standard deviation over classifiers of each sample measure (mean over
    the sets) and of the test accuracy; and each classifier's test accuracy, the study's first."""
    vae = load_model(Path("models/vae"))
    sets = {
        name: prior_samples(vae.decode, vae.config.latent, score_count, s)
        for name, s in zip(sample_names(sample_seeds), sample_seeds, strict=True)
    }
    judges = [(judge, reference)]
    for seed in classifier_seeds:
        model = load_model(FRESH / f"classifier_seed_{seed}").eval()
        judges.append((Judge.of(model, judge.test), predict(model.features, judge.test.images).numpy()))
    scores = [j.sample_sets(sets, features)["vae"] for j, features in judges]
    labels = judge.test.labels
    scores = [
        s | {"test_accuracy": float((j.classify(j.test.images).argmax(1) == labels).double().mean())}
        for s, (j, _) in zip(scores, judges, strict=True)
    ]
    spread = {
        "classifiers": len(scores),
        **{
            k: float(np.std([s[k] for s in scores], ddof=1)) if len(scores) > 1 else 0.0
            for k in (*metrics.SAMPLE_QUALITY, "test_accuracy")
        },
    }
    return spread, [s["test_accuracy"] for s in scores]


if __name__ == "__main__":
    cli.run(main)
