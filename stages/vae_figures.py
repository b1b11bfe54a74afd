"""Draw the figures of the trained VAE: its latent means and a walk over its prior.

Apart from training, so that a figure's param (prior_grid) reruns no training.

Reads:  params.yaml (dataset, prior_grid), models/vae/, data/idx (test images).
Writes: plots/vae/latent.png (the test images' latent means), plots/vae/grid.png (a decoded
        walk over the N(0, I) prior).
"""

from pathlib import Path

from stages.lib import cli, figures, io, params
from stages.lib.models import load_model
from stages.lib.runtime import setup


def main() -> None:
    p = params.load()
    setup("cpu")  # 10,000 encodes and a few decodes: not worth a device transfer
    model = load_model(Path("models/vae"))
    with io.transaction() as out:
        figures.latent_figures(
            out,
            plot_dir=Path("plots/vae"),
            title="VAE",
            encode=model.encode_mean,
            decode=model.decode,
            latent=model.config.latent,
            dataset=p.dataset,
            limit=p.prior_grid.range,
            cells=p.prior_grid.cells,
        )


if __name__ == "__main__":
    cli.run(main)
