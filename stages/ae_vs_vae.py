"""Draw the study's first autoencoder and its VAE side by side: each one's test codes above its
decoded walk (the autoencoder's over latent_grid, the VAE's over prior_grid of its prior).

A figure stage of its own, so that the report reads metrics and figures and loads no model.

Reads:  params.yaml (dataset, ae.seeds, latent_grid, prior_grid), models/ae/seed_<first seed>/,
        models/vae/, data/idx (test images).
Writes: plots/ae_vs_vae.png.
"""

from pathlib import Path

from stages.lib import cli, figures, io, params, plots, study
from stages.lib.data import DATA_DIR, DATASETS, load_split
from stages.lib.models import load_model
from stages.lib.runtime import setup

FIGURE = Path("plots/ae_vs_vae.png")


def main() -> None:
    p = params.load()
    seed = p.ae.seeds[0]
    test = load_split(DATA_DIR, "test", setup("cpu"))
    ae, vae = load_model(Path(f"models/ae/seed_{seed}")), load_model(Path("models/vae"))
    ae_grid, vae_grid = (p.latent_grid.range, p.latent_grid.cells), (p.prior_grid.range, p.prior_grid.cells)
    panels = []
    for name, encode, decode, latent, (limit, cells) in (
        (f"AE (seed {seed})", ae.encode, ae.decode, ae.config.latent, ae_grid),
        ("VAE (means)", vae.encode_mean, vae.decode, vae.config.latent, vae_grid),
    ):
        images = figures.walk(decode, latent=latent, limit=limit, cells=cells).numpy()
        panels.append((name, study.codes(encode, test).numpy(), test.labels.numpy(), images, limit, cells))
    with io.transaction() as out:
        out.save_figure(FIGURE, plots.side_by_side_figure(panels, DATASETS[p.dataset].classes))


if __name__ == "__main__":
    cli.run(main)
