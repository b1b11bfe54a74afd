"""Judge reconstructions, decoded grids and latent spaces the way the study judged them by eye.

For every 2-D model (the autoencoder of each seed, PCA, the VAE): how many reconstructed test
images the classifier still recognises, how sharp they are against the originals, and how
far the test codes are from N(0, I). For the decoded grids of the autoencoder (first seed)
and the VAE: sharpness, the classifier's confidence, how many classes appear and how evenly,
and how smoothly the grid changes from cell to cell. The same for the VAE "grid" as the
study's code drew it (an independent prior sample in every cell), and the silhouette of the
PCA scatter as the study's code drew it (102 shuffled training batches, a 128-image fit).

Reads:  params.yaml (ae.seeds, grid, pca.components, pca.seed, vae.seed, prior_grid.range,
        prior_grid.cells), models/ae/, models/pca/, models/vae/, models/classifier/, data/idx.
Writes: metrics/judge.json, plots/vae/study_grid.png.
"""

from pathlib import Path

from stages.lib import cli, io, metrics, params, plots, study_code
from stages.lib.data import Split, load_data
from stages.lib.io import load_checkpoint
from stages.lib.judging import Judge
from stages.lib.models import load_model
from stages.lib.pca import PCACodec, fit_pca
from stages.lib.runtime import predict, setup


def main() -> None:
    p = params.load()
    device = setup("cpu")  # inference on 10,000 images per model: not worth a device transfer
    train, test = load_data(device)
    judge = Judge.load(Path("models/classifier"), test)
    autoencoders = {s: load_model(Path(f"models/ae/seed_{s}")) for s in p.ae.seeds}
    vae = load_model(Path("models/vae"))
    _, tensors = load_checkpoint(Path("models/pca"))
    pca = PCACodec(**tensors)

    first = autoencoders[p.ae.seeds[0]]
    cells = p.prior_grid.cells
    as_drawn = predict(vae.decode, study_code.prior_grid_codes(vae.config.latent, cells, p.vae.seed))
    scatter = study_code.scatter_rows(len(train), p.pca.seed)
    scattered = Split(train.images[scatter], train.labels[scatter])
    batch_fit, _ = fit_pca(scattered.images[: study_code.BATCH], p.pca.components)  # its first batch
    result = {
        "classifier_accuracy_on_test_images": float(
            (judge.classify(test.images).argmax(1) == test.labels).double().mean()
        ),
        "reconstructions": {
            **{f"ae_seed_{s}": judge.reconstructions(ae.encode, ae.decode) for s, ae in autoencoders.items()},
            "pca": judge.reconstructions(pca.encode, pca.decode),
            "vae": judge.reconstructions(vae.encode_mean, vae.decode),
        },
        "grids": {
            "ae": judge.walk(
                first.decode, latent=first.config.latent, limit=p.latent_grid.range, cells=p.latent_grid.cells
            ),
            "vae": judge.walk(vae.decode, latent=vae.config.latent, limit=p.prior_grid.range, cells=cells),
            study_code.GRID_KEY: judge.grid(as_drawn, cells),
        },
        "pca_scatter_as_study_drew_it": {
            "images": len(scatter),
            "silhouette_fit_on_128": metrics.silhouette(batch_fit.encode(scattered.images), scattered.labels),
            "silhouette_full_fit": metrics.silhouette(pca.encode(scattered.images), scattered.labels),
        },
    }
    title = f"VAE grid as the study drew it:\n{cells * cells} independent draws of z ~ N(0, I)"
    with io.transaction() as out:
        out.write_json(Path("metrics/judge.json"), result)
        out.save_figure(Path("plots/vae/study_grid.png"), plots.samples_figure(as_drawn.numpy(), title))


if __name__ == "__main__":
    cli.run(main)
