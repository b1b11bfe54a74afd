"""Write the study's report (Q1-Q4) from the pipeline's metrics, tables and figures.

Reads:  params.yaml (ae.seeds, ae.epochs, vae.epochs, grid, vae.grid_range, vae.grid_size),
        metrics/, plots/ (CSV tables and PNG figures), models/ae/, models/vae/, data/mnist.
Writes: report/report.md, report/ae_vs_vae.png (side-by-side latent spaces and grids).
"""

import csv
from pathlib import Path

import numpy as np

from stages.lib import cli, io, params, study
from stages.lib.metrics import mean_std
from stages.lib.models import build
from stages.lib.plots import side_by_side_figure
from stages.lib.report import compare, image, num, table
from stages.lib.train import setup

OUT = Path("report/report.md")
SIDE_BY_SIDE = Path("report/ae_vs_vae.png")


def load_model(path: Path):
    config, state = io.load_checkpoint(path)
    model = build(config)
    model.load_state_dict(state)
    return model.eval(), config["latent"]


def side_by_side(p: params.Params, seed: int):
    device = setup("cpu")
    _, test = study.load_data(device)
    labels = test.labels.numpy()
    ae, ae_latent = load_model(Path(f"models/ae/seed_{seed}"))
    vae, vae_latent = load_model(Path("models/vae"))
    panels = []
    for name, encode, decode, latent, limit, size in (
        (f"AE (seed {seed})", ae.encode, ae.decode, ae_latent, p.grid.range, p.grid.size),
        ("VAE (means)", lambda x: vae.encode(x)[0], vae.decode, vae_latent, p.vae.grid_range, p.vae.grid_size),
    ):
        images = study.grid_images(decode, latent, limit, size, device)
        panels.append((name, study.codes(encode, test), labels, images, limit, size))
    return side_by_side_figure(panels)


def separation_cells(m: dict) -> list:
    return [m["silhouette"], m["knn_accuracy"], " / ".join(num(s, 3) for s in m["code_std"])]


def main() -> None:
    p = params.load()
    seeds = p.ae.seeds
    ae = {s: io.read_json(Path(f"metrics/ae/seed_{s}.json")) for s in seeds}
    pca = io.read_json(Path("metrics/pca.json"))
    sweep = io.read_json(Path("metrics/sweep.json"))
    vae = io.read_json(Path("metrics/vae.json"))
    with Path("plots/sweep.csv").open() as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]

    sep_head = ["silhouette", "5-NN accuracy", "code std (z1 / z2)"]
    md = [
        "# The MNIST autoencoder study, reproduced\n\n",
        "Written by the `report` stage of `dvc repro` from `metrics/` and `plots/`; nothing is typed by hand. "
        f"Device: {vae['device']}. Autoencoder epochs: {p.ae.epochs}; VAE epochs: {p.vae.epochs}. "
        "Errors are mean squared error per pixel, pixels in [0, 1]. Separation metrics are on the "
        "test set: silhouette by digit, and accuracy of a 5-nearest-neighbour classifier fit on "
        "training codes.\n\n",
        f"## Q1. A 2-D autoencoder, trained {len(seeds)} times\n\n",
        f"`Autoencoder(784, {p.ae.hidden}, {p.ae.latent})`, Adam lr {p.ae.lr}, batch {p.ae.batch_size}, "
        f"MSE loss, one run per seed.\n\n",
    ]
    stats = {k: mean_std([ae[s][k] for s in seeds]) for k in ("train_mse", "test_mse", "silhouette", "knn_accuracy")}
    md.append(
        table(
            ["seed", "train MSE", "test MSE", *sep_head],
            [[s, ae[s]["train_mse"], ae[s]["test_mse"], *separation_cells(ae[s])] for s in seeds]
            + [["mean ± std", *(f"{num(stats[k]['mean'])} ± {num(stats[k]['std'], 2)}" for k in stats), ""]],
        )
    )
    best = max(seeds, key=lambda s: ae[s]["silhouette"])
    md.append(
        f"\nThe run that separates the digits best by silhouette is seed {best} "
        f"({num(ae[best]['silhouette'])}; 5-NN accuracy {num(ae[best]['knn_accuracy'])}).\n"
    )
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
            ["train MSE", "test MSE", "explained variance (PC1, PC2)", "total", *sep_head],
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
        "\n"
        + compare(stats["test_mse"]["mean"], pca["test_mse"], "the autoencoder (mean of runs)", "PCA", "test MSE")
        + "\n",
        f"\n{image('plots/pca/latent.png', 'PCA latent')} {image('plots/pca/grid.png', 'PCA grid')}\n",
    ]

    margins = [(r["pca_test"] - r["ae_test"], int(r["latent"])) for r in rows]
    below = all(m > 0 for m, _ in margins)
    smallest = min(margins)
    md += [
        "\n## Q3. Reconstruction error against latent size\n\n",
        "An autoencoder (same recipe) and a PCA for every size; errors on the training and the held-out test set.\n\n",
        table(
            ["latent", "AE train", "AE test", "PCA train", "PCA test"],
            [[int(r["latent"]), r["ae_train"], r["ae_test"], r["pca_train"], r["pca_test"]] for r in rows],
        ),
        f"\nElbow by Kneedle on the test curves: autoencoder {num(sweep['elbow']['ae'])}, "
        f"PCA {num(sweep['elbow']['pca'])}. "
        f"PCA needs {num(sweep['pca_components_for_variance']['90'])} components for 90% of the variance and "
        f"{num(sweep['pca_components_for_variance']['95'])} for 95%.\n",
        f"\nThe autoencoder's test MSE is {'below' if below else 'not below'} PCA's at every size swept; "
        f"the smallest margin (PCA minus AE) is {num(smallest[0])} at size {smallest[1]}.\n",
        f"\n{image('plots/sweep/error.png', 'error against latent size')}\n",
    ]

    md += [
        "\n## Q4. A variational autoencoder\n\n",
        f"`VAE(784, {p.vae.hidden}, {p.vae.latent})`; loss per image = binary cross-entropy summed over pixels "
        "+ KL(q(z|x) || N(0, I)) in closed form (Kingma and Welling 2014, appendix B).\n\n",
        table(
            ["test loss", "reconstruction", "KL", "test MSE (mean decode)", *sep_head],
            [[vae["test_loss"], vae["test_recon"], vae["test_kl"], vae["test_mse"], *separation_cells(vae)]],
        ),
        "\n"
        + compare(
            float(np.mean(ae[seeds[0]]["code_std"])),
            float(np.mean(vae["code_std"])),
            f"the AE (seed {seeds[0]})",
            "the VAE",
            "mean code std",
        )
        + "\n",
        f"\n{image('plots/vae/latent.png', 'VAE latent')} {image('plots/vae/grid.png', 'VAE grid')}\n",
        f"\nSide by side (grid over ±{num(p.grid.range)} for the AE, "
        f"±{num(p.vae.grid_range)} of the prior for the VAE):\n",
        f"\n![AE vs VAE]({SIDE_BY_SIDE.name})\n",
        "\n### Samples from the prior\n\n",
        " ".join(image(f"plots/samples/seed_{s}.png", f"samples seed {s}") for s in p.sample.seeds) + "\n",
    ]
    with io.transaction() as out:
        out.save_figure(SIDE_BY_SIDE, side_by_side(p, seeds[0]))
        out.write_text(OUT, "".join(md))


if __name__ == "__main__":
    cli.run(main)
