"""Write the study's report (Q1-Q4) from the pipeline's metrics, tables and figures.

Every comparative sentence of the study ("run 3 separates the clusters best", "the
autoencoder reconstructs better than PCA", ...) is restated with the numbers that support or
refute it; those judgements are also written as metrics, so experiments compare on them.

Reads:  params.yaml (dataset, ae, grid, pca, vae, sample), metrics/, plots/sweep.csv, models/ae/,
        models/vae/, data/idx.
Writes: report/report.md, report/ae_vs_vae.png (side-by-side latent spaces and grids),
        metrics/study.json (run-to-run variation and the study's judgements as numbers).
"""

import csv
from pathlib import Path

import numpy as np

from stages.lib import cli, io, params, study
from stages.lib.data import DATASETS, load_data
from stages.lib.metrics import SAMPLE_QUALITY, mean_std
from stages.lib.models import load_model
from stages.lib.plots import side_by_side_figure
from stages.lib.report import compare, image, num, table
from stages.lib.runtime import setup

OUT = Path("report/report.md")
SIDE_BY_SIDE = Path("report/ae_vs_vae.png")
SEPARATION = ["silhouette", "5-NN accuracy", "code std (z1 / z2)"]
STUDY_ELBOWS = {"ae": 10, "pca": 15}  # what the study read off its curves by eye


def side_by_side(p: params.Params, seed: int):
    device = setup("cpu")
    _, test = load_data(device)
    ae, vae = load_model(Path(f"models/ae/seed_{seed}")), load_model(Path("models/vae"))
    panels = []
    for name, encode, decode, latent, limit, size in (
        (f"AE (seed {seed})", ae.encode, ae.decode, ae.config.latent, p.grid.range, p.grid.size),
        ("VAE (means)", lambda x: vae.encode(x)[0], vae.decode, vae.config.latent, p.vae.grid_range, p.vae.grid_size),
    ):
        images = study.grid_images(decode, latent, limit, size, device)
        panels.append((name, study.codes(encode, test).numpy(), test.labels.numpy(), images, limit, size))
    return side_by_side_figure(panels, DATASETS[p.dataset].classes)


def separation_cells(m: dict) -> list:
    return [m["silhouette"], m["knn_accuracy"], " / ".join(num(s, 3) for s in m["code_std"])]


def judgements(p: params.Params, ae: dict, pca: dict, sweep_rows: list, vae: dict, samples: dict) -> dict:
    """The study's statements by eye, as numbers (written to metrics/study.json)."""
    seeds = p.ae.seeds
    margins = [(r["pca_test"] - r["ae_test"], int(r["latent"])) for r in sweep_rows]
    smallest = min(margins)
    ae_std = float(np.mean([np.mean(ae[s]["code_std"]) for s in seeds]))
    runs = {k: mean_std([ae[s][k] for s in seeds]) for k in ("test_mse", "silhouette", "knn_accuracy")}
    return {
        "ae_runs": runs,
        "best_separating_seed": max(seeds, key=lambda s: ae[s]["silhouette"]),
        "ae_over_pca_test_mse_2d": runs["test_mse"]["mean"] / pca["test_mse"],
        "ae_below_pca_at_every_size": all(m > 0 for m, _ in margins),
        "smallest_pca_minus_ae_margin": {"size": smallest[1], "value": smallest[0]},
        "vae_over_ae_code_std": float(np.mean(vae["code_std"])) / ae_std,
        "vae_over_control_confidence": samples["vae"]["confidence"] / samples["ae_control"]["confidence"],
        "vae_over_control_frechet": samples["vae"]["frechet"] / samples["ae_control"]["frechet"],
    }


def agreement(elbows: dict[str, int | None]) -> str:
    """Whether computed elbows agree with the study's reading (within 2 sizes)."""
    verdicts = []
    for method, name in (("ae", "autoencoder"), ("pca", "PCA")):
        knee, seen = elbows[method], STUDY_ELBOWS[method]
        if knee is None:
            verdicts.append(f"no elbow found for the {name}")
        elif abs(knee - seen) <= 2:
            verdicts.append(f"the {name} agrees with the study")
        else:
            verdicts.append(
                f"the {name} elbow comes {'earlier' if knee < seen else 'later'} than the study read by eye"
            )
    return "; ".join(verdicts)


def main() -> None:
    p = params.load()
    seeds = p.ae.seeds
    ae = {s: io.read_json(Path(f"metrics/ae/seed_{s}.json")) for s in seeds}
    pca, sweep, vae = (io.read_json(Path(f"metrics/{n}.json")) for n in ("pca", "sweep", "vae"))
    samples, classifier = io.read_json(Path("metrics/samples.json")), io.read_json(Path("metrics/classifier.json"))
    with Path("plots/sweep.csv").open() as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    facts = judgements(p, ae, pca, rows, vae, samples)
    runs = facts["ae_runs"]
    best = facts["best_separating_seed"]
    best_knn = max(seeds, key=lambda s: ae[s]["knn_accuracy"])
    third = seeds[2] if len(seeds) >= 3 else None

    md = [
        f"# The MNIST autoencoder study, reproduced on {p.dataset}\n\n",
        "Written by the `report` stage of `dvc repro` from `metrics/` and `plots/`; nothing is typed by hand. "
        f"Device: {vae['device']}. Autoencoder epochs: {p.ae.epochs}; VAE epochs: {p.vae.epochs}. "
        "Errors are mean squared error per pixel, pixels in [0, 1]. Separation metrics are on the "
        "test set: silhouette by class (-1..1), and accuracy of a 5-nearest-neighbour classifier fit on "
        "training codes; code std is the spread of the test codes per axis.\n\n",
        f"## Q1. A 2-D autoencoder, trained {len(seeds)} times\n\n",
        f"`Autoencoder(784, {p.ae.hidden}, {p.ae.latent})`, Adam lr {p.ae.lr}, batch {p.ae.batch_size}, "
        "MSE loss, one run per seed.\n\n",
        table(
            ["seed", "train MSE", "test MSE", *SEPARATION],
            [[s, ae[s]["train_mse"], ae[s]["test_mse"], *separation_cells(ae[s])] for s in seeds]
            + [["mean ± std", "", *(f"{num(v['mean'])} ± {num(v['std'], 2)}" for v in runs.values()), ""]],
        ),
        f"\n*The study: run 3 separates the clusters best.* Here the best-separated run is seed {best} by "
        f"silhouette ({num(ae[best]['silhouette'])}) and seed {best_knn} by 5-NN accuracy "
        f"({num(ae[best_knn]['knn_accuracy'])})"
        + (
            f"; the third run (seed {third}) is {'the best' if third == best else 'not the best'} by silhouette"
            if third
            else ""
        )
        + f". Run-to-run spread of the test MSE is {num(runs['test_mse']['std'], 2)} "
        f"({num(100 * runs['test_mse']['std'] / runs['test_mse']['mean'], 2)}% of its mean).\n",
    ]
    for s in seeds:
        md.append(
            f"\n{image(f'plots/ae/seed_{s}/latent.png', f'AE seed {s} latent')} "
            f"{image(f'plots/ae/seed_{s}/grid.png', f'AE seed {s} grid')}\n"
        )

    md += [
        f"\n## Q2. PCA with {p.pca.components} components\n\n",
        "Fit on the whole training set (scikit-learn, exact). Codes are in standard deviations; "
        f"the grid decodes `mean + z * sqrt(explained_variance) @ components` over ±{num(p.grid.range)}.\n\n",
        table(
            ["train MSE", "test MSE", "explained variance (per axis)", "total", *SEPARATION],
            [
                [
                    pca["train_mse"],
                    pca["test_mse"],
                    " / ".join(num(r, 3) for r in pca["explained_variance_ratio"]),
                    pca["explained_variance_total"],
                    *separation_cells(pca),
                ]
            ],
        ),
        "\n*The study: the autoencoder reconstructs better than PCA.* "
        + compare(runs["test_mse"]["mean"], pca["test_mse"], "the autoencoder (mean of runs)", "PCA", "test MSE")
        + f" PCA's silhouette is {num(pca['silhouette'])}, "
        f"the autoencoders' {num(runs['silhouette']['mean'])}.\n",
        f"\n{image('plots/pca/latent.png', 'PCA latent')} {image('plots/pca/grid.png', 'PCA grid')}\n",
    ]

    elbow, variance = sweep["elbow"], sweep["pca_components_for_variance"]
    margin = facts["smallest_pca_minus_ae_margin"]
    md += [
        "\n## Q3. Reconstruction error against latent size\n\n",
        "An autoencoder (same recipe) and a PCA for every size; errors on the training and the held-out test set.\n\n",
        table(
            ["latent", "AE train", "AE test", "PCA train", "PCA test"],
            [[int(r["latent"]), r["ae_train"], r["ae_test"], r["pca_train"], r["pca_test"]] for r in rows],
        ),
        f"\n*The study: the elbow is near {STUDY_ELBOWS['ae']} for the autoencoder and {STUDY_ELBOWS['pca']} "
        f"for PCA.* Kneedle on the test curves puts it at {num(elbow['ae'])} for the autoencoder and "
        f"{num(elbow['pca'])} for PCA: {agreement(elbow)}. PCA needs {num(variance['90'])} components "
        f"for 90% of the variance and {num(variance['95'])} for 95%, far beyond this range.\n",
        f"\nThe autoencoder's test MSE is {'below' if facts['ae_below_pca_at_every_size'] else 'not below'} "
        f"PCA's at every size swept; the smallest margin (PCA minus AE) is {num(margin['value'])} at size "
        f"{margin['size']}.\n",
        f"\n{image('plots/sweep/error.png', 'error against latent size')}\n",
    ]

    control = samples["ae_control"]
    md += [
        "\n## Q4. A variational autoencoder\n\n",
        f"`VAE(784, {p.vae.hidden}, {p.vae.latent})`; loss per image = binary cross-entropy summed over pixels "
        "+ KL(q(z|x) || N(0, I)) in closed form (Kingma and Welling 2014, appendix B).\n\n",
        table(
            ["test loss", "reconstruction", "KL", "test MSE (mean decode)", *SEPARATION],
            [[vae["test_loss"], vae["test_recon"], vae["test_kl"], vae["test_mse"], *separation_cells(vae)]],
        ),
        "\n*The study: the VAE latent space is more compact.* "
        f"Its mean code std is {num(facts['vae_over_ae_code_std'], 3)} times the autoencoders' (mean of runs): "
        + ("more compact, as the study says.\n" if facts["vae_over_ae_code_std"] < 1 else "not more compact.\n"),
        f"\n{image('plots/vae/latent.png', 'VAE latent')} {image('plots/vae/grid.png', 'VAE grid')}\n",
        f"\nSide by side (grid over ±{num(p.grid.range)} for the AE, "
        f"±{num(p.vae.grid_range)} of the prior for the VAE):\n",
        f"\n![AE vs VAE]({SIDE_BY_SIDE.name})\n",
        "\n### Samples from the prior\n\n",
        f"*The study: the VAE samples are recognisable and varied.* A small CNN classifier "
        f"(test accuracy {num(classifier['test_accuracy'])}) judges {p.sample.score_count} samples per set: "
        "mean top-class confidence, entropy of the predicted-class histogram (ln 10 = 2.303 when all ten "
        "classes are equally common), and the Frechet distance of its features to the test images "
        f"(two halves of the test set are {num(samples['test_halves_frechet'])} apart). The control decodes "
        f"z ~ N(0, I) with the autoencoder of seed {seeds[0]}.\n\n",
        table(
            ["set", "confidence", "class entropy", "Frechet distance"],
            [[name, *(s[k] for k in SAMPLE_QUALITY)] for name, s in samples["vae_sets"].items()]
            + [["VAE, mean of sets", *(samples["vae"][k] for k in SAMPLE_QUALITY)]]
            + [[f"control: AE seed {seeds[0]}", *(control[k] for k in SAMPLE_QUALITY)]],
        ),
        "\n"
        + compare(samples["vae"]["frechet"], control["frechet"], "the VAE", "the AE control", "Frechet distance")
        + "\n\n",
        " ".join(image(f"plots/samples/seed_{s}.png", f"samples seed {s}") for s in p.sample.seeds)
        + f" {image('plots/samples/ae_control.png', 'AE control')}\n",
    ]
    with io.transaction() as out:
        out.save_figure(SIDE_BY_SIDE, side_by_side(p, seeds[0]))
        out.write_json(Path("metrics/study.json"), facts)
        out.write_text(OUT, "".join(md))


if __name__ == "__main__":
    cli.run(main)
