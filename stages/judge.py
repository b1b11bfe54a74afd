"""Judge reconstructions, decoded grids and latent spaces the way the study judged them by eye.

For every 2-D model (the autoencoder of each seed, PCA, the VAE): how many reconstructed test
images the classifier still recognises, how sharp they are against the originals, and how
far the test codes are from N(0, I). For the decoded grids of the autoencoder (first seed)
and the VAE: sharpness, the classifier's confidence, how many classes appear, and how
smoothly the grid changes from cell to cell.

Reads:  params.yaml (ae.seeds, grid, vae.grid_range, vae.grid_size), models/ae/, models/pca/,
        models/vae/, models/classifier/, data/idx.
Writes: metrics/judge.json.
"""

from pathlib import Path

import torch

from stages.lib import cli, io, params, quality, study
from stages.lib.data import load_data
from stages.lib.io import load_checkpoint
from stages.lib.models import load_model
from stages.lib.pca import PCACodec
from stages.lib.runtime import predict, setup


def main() -> None:
    p = params.load()
    device = setup("cpu")  # inference on 10,000 images per model: not worth a device transfer
    _, test = load_data(device)
    judge = load_model(Path("models/classifier"))
    test_energy = quality.gradient_energy(test.images)  # the reference of every sharpness ratio

    def classify(images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(predict(judge, images), 1)

    def reconstructions(encode, decode) -> dict[str, float]:
        codes = study.codes(encode, test)  # encoded once: for the prior and for the decoder
        recon = predict(decode, codes)
        return {
            "classifier_accuracy": float((classify(recon).argmax(1) == test.labels).double().mean()),
            "sharpness_ratio": quality.sharpness_ratio(recon, test_energy),
            "prior_kl": quality.gaussian_kl_from_prior(codes),
        }

    def grid(decode, latent: int, limit: float, size: int) -> dict[str, float]:
        images = torch.from_numpy(study.grid_images(decode, latent, limit, size, device))
        probs = classify(images)
        predicted = probs.argmax(1)
        return {
            "sharpness_ratio": quality.sharpness_ratio(images, test_energy),
            "confidence": float(probs.max(1).values.mean()),
            "distinct_classes": len(predicted.unique()),
            "neighbour_distance": quality.neighbour_distance(images, size),
            "class_change_rate": quality.class_change_rate(predicted, size),
        }

    autoencoders = {s: load_model(Path(f"models/ae/seed_{s}")) for s in p.ae.seeds}
    vae = load_model(Path("models/vae"))
    _, tensors = load_checkpoint(Path("models/pca"))
    pca = PCACodec(**tensors)

    def vae_mean(x: torch.Tensor) -> torch.Tensor:
        return vae.encode(x)[0]

    first = autoencoders[p.ae.seeds[0]]
    result = {
        "classifier_accuracy_on_test_images": float((classify(test.images).argmax(1) == test.labels).double().mean()),
        "reconstructions": {
            **{f"ae_seed_{s}": reconstructions(ae.encode, ae.decode) for s, ae in autoencoders.items()},
            "pca": reconstructions(pca.encode, pca.decode),
            "vae": reconstructions(vae_mean, vae.decode),
        },
        "grids": {
            "ae": grid(first.decode, first.config.latent, p.grid.range, p.grid.size),
            "vae": grid(vae.decode, vae.config.latent, p.vae.grid_range, p.vae.grid_size),
        },
    }
    with io.transaction() as out:
        out.write_json(Path("metrics/judge.json"), result)


if __name__ == "__main__":
    cli.run(main)
