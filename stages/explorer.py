"""Write the interactive latent-space explorer: a self-contained page in which the decoded
image follows the pointer through each 2-D latent space (the autoencoder of every seed, PCA,
the VAE's means), computed by the page from the models' own decoder weights.

Reads:  params.yaml (dataset, ae.seeds, grid.range, vae.grid_range), models/ae/, models/pca/,
        models/vae/, data/idx (test images: the scatter, and the originals shown on hover).
Writes: report/explorer.html (open it from disk; it loads nothing).
"""

from pathlib import Path

from stages.lib import cli, explorer, io, params
from stages.lib.data import DATASETS, load_data
from stages.lib.io import load_checkpoint
from stages.lib.models import load_model
from stages.lib.pca import PCACodec
from stages.lib.runtime import predict, setup

OUT = Path("report/explorer.html")


def main() -> None:
    p = params.load()
    device = setup("cpu")
    _, test = load_data(device)
    _, tensors = load_checkpoint(Path("models/pca"))
    pca = PCACodec(**tensors)
    vae = load_model(Path("models/vae"))
    models = [(f"Autoencoder, seed {s}", load_model(Path(f"models/ae/seed_{s}")), p.grid.range) for s in p.ae.seeds]
    spaces = [explorer.Space(name, ae, predict(ae.encode, test.images).numpy(), limit) for name, ae, limit in models]
    pca_codes, vae_codes = predict(pca.encode, test.images), predict(lambda x: vae.encode(x)[0], test.images)
    spaces.append(explorer.Space("PCA", pca, pca_codes.numpy(), p.grid.range))
    spaces.append(explorer.Space("VAE (means)", vae, vae_codes.numpy(), p.vae.grid_range))
    data = explorer.payload(spaces, test.images, test.labels, DATASETS[p.dataset].classes)
    with io.transaction() as out:
        out.write_text(OUT, explorer.page(data, f"Latent spaces of the {p.dataset} study: an explorer"))


if __name__ == "__main__":
    cli.run(main)
