"""Draw the figures of the fitted PCA, the same as the autoencoder's.

Apart from the fit, so that a figure's param (latent_grid) refits nothing.

Reads:  params.yaml (dataset, latent_grid), models/pca/, data/idx (test images).
Writes: plots/pca/latent.png (the test codes), plots/pca/grid.png (a decoded walk over the
        plane of the first two components, in standard deviations).
"""

from pathlib import Path

from stages.lib import cli, figures, io, params
from stages.lib.io import load_checkpoint
from stages.lib.pca import PCACodec
from stages.lib.runtime import setup


def main() -> None:
    p = params.load()
    setup("cpu")  # 10,000 encodes and a few decodes: not worth a device transfer
    config, tensors = load_checkpoint(Path("models/pca"))
    codec = PCACodec(**tensors)
    with io.transaction() as out:
        figures.latent_figures(
            out,
            plot_dir=Path("plots/pca"),
            title=f"PCA, {config['components']} components",
            encode=codec.encode,
            decode=codec.decode,
            latent=config["components"],
            dataset=p.dataset,
            limit=p.latent_grid.range,
            cells=p.latent_grid.cells,
        )


if __name__ == "__main__":
    cli.run(main)
