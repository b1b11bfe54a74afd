"""Draw the figures of one trained autoencoder (one instance of a DVC matrix stage, as train_ae).

Apart from training, so that a figure's param (latent_grid) reruns no training.

Reads:  params.yaml (dataset, latent_grid), models/ae/seed_<seed>/, data/idx (test images).
Writes: plots/ae/seed_<seed>/latent.png (the test codes), grid.png (a decoded walk over the
        latent plane).
"""

import argparse
from pathlib import Path

from stages.lib import cli, figures, io, params
from stages.lib.models import load_model
from stages.lib.runtime import setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True)
    seed = parser.parse_args().seed
    p = params.load()
    setup("cpu")  # 10,000 encodes and a few decodes: not worth a device transfer
    model = load_model(Path(f"models/ae/seed_{seed}"))
    with io.transaction() as out:
        figures.latent_figures(
            out,
            plot_dir=Path(f"plots/ae/seed_{seed}"),
            title=f"Autoencoder, seed {seed}",
            encode=model.encode,
            decode=model.decode,
            latent=model.config.latent,
            dataset=p.dataset,
            limit=p.latent_grid.range,
            cells=p.latent_grid.cells,
        )


if __name__ == "__main__":
    cli.run(main)
