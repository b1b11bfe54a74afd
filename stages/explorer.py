"""Write the interactive latent-space explorer: a self-contained page in which the decoded
image follows the pointer through each 2-D latent space (the autoencoder of every seed, PCA,
the VAE's means), computed by the page from the models' own decoder weights.

Reads:  params.yaml (dataset, ae.seeds, grid.range, prior_grid.range), models/ae/, models/pca/,
        models/vae/, data/idx (test images: the scatter, and the originals shown on hover).
Writes: report/explorer.html (open it from disk; it loads nothing).
"""

from pathlib import Path

from stages.lib import cli, explorer, io, params
from stages.lib.data import DATASETS, load_data
from stages.lib.models import VAE
from stages.lib.runtime import predict, setup

OUT = Path("report/explorer.html")


def main() -> None:
    p = params.load()
    device = setup("cpu")
    _, test = load_data(device)
    spaces = [
        explorer.Space(
            name,
            model,
            predict(explorer.encoder(model), test.images).numpy(),
            p.prior_grid.range if isinstance(model, VAE) else p.latent_grid.range,
        )
        for name, model in explorer.load_models(Path("."), p.ae.seeds)
    ]
    data = explorer.payload(spaces, test.images, test.labels, DATASETS[p.dataset].classes)
    with io.transaction() as out:
        out.write_text(OUT, explorer.page(data, f"Latent spaces of the {p.dataset} study: an explorer"))


if __name__ == "__main__":
    cli.run(main)
