"""Fit PCA on the whole training set and draw the same figures as for the autoencoder.

Reads:  params.yaml (pca.components, grid), data/mnist.
Writes: metrics/pca.json (train/test MSE per pixel, explained variance, latent separation),
        plots/pca/latent.png, plots/pca/grid.png.
"""

from pathlib import Path

from stages.lib import cli, io, params, study
from stages.lib.pca import fit_pca
from stages.lib.train import setup


def main() -> None:
    p = params.load()
    data = study.load_data(setup("cpu"))  # scikit-learn works on the CPU
    codec, ratio = fit_pca(data[0].images, p.pca.components)

    with io.transaction() as out:
        separation = study.latent_outputs(
            out,
            Path("plots/pca"),
            f"PCA, {p.pca.components} components",
            codec.encode,
            codec.decode,
            p.pca.components,
            data,
            p.grid.range,
            p.grid.size,
        )
        out.write_json(
            Path("metrics/pca.json"),
            {
                "components": p.pca.components,
                "train_mse": study.reconstruction_mse(codec.reconstruct, data[0].images),
                "test_mse": study.reconstruction_mse(codec.reconstruct, data[1].images),
                "explained_variance_ratio": [float(r) for r in ratio[: p.pca.components]],
                "explained_variance_total": float(ratio[: p.pca.components].sum()),
                **separation,
            },
        )


if __name__ == "__main__":
    cli.run(main)
