"""Fit PCA on the training set, scored as the autoencoder is; price the study's own choice of
fitting on one batch of 128 images.

Reads:  params.yaml (pca), data/idx.
Writes: models/pca/ (config.json + model.safetensors: mean, components, scale),
        metrics/pca.json (train/test MSE per pixel, explained variance, latent separation,
        whether a second fit is identical, test MSE of fits on 128 random images).
        Its figures are stage pca_figures'.
"""

from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import save as safetensors_bytes

from stages.lib import cli, io, params, study
from stages.lib.data import load_data
from stages.lib.metrics import mean_std
from stages.lib.pca import fit_pca
from stages.lib.runtime import setup

STUDY_FIT_IMAGES = 128  # the study fitted its PCA on a single mini-batch
STUDY_FIT_DRAWS = 10


def random_rows(x: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """``count`` rows of ``x`` drawn without replacement, the same for the same seed."""
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:count]]


def main() -> None:
    p = params.load()
    train, test = data = load_data(setup("cpu"))  # a 784x784 eigendecomposition: the CPU suffices
    fit_on = train.images if p.pca.fit_images >= len(train) else random_rows(train.images, p.pca.fit_images, p.pca.seed)
    codec, ratio = fit_pca(fit_on, p.pca.components)
    again, _ = fit_pca(fit_on.clone(), p.pca.components)  # the study's claim: PCA is deterministic
    identical = all(torch.equal(a, b) for a, b in zip(asdict(codec).values(), asdict(again).values(), strict=True))
    small_fits = [
        fit_pca(random_rows(train.images, STUDY_FIT_IMAGES, p.pca.seed + draw), p.pca.components)[0]
        for draw in range(STUDY_FIT_DRAWS)
    ]

    separation = study.separation(codec.encode, data)
    with io.transaction() as out:
        out.write_json(
            Path("metrics/pca.json"),
            {
                "components": p.pca.components,
                "refit_identical": identical,
                "train_mse": study.reconstruction_mse(codec.reconstruct, train.images),
                "test_mse": study.reconstruction_mse(codec.reconstruct, test.images),
                "study_batch_fit": {
                    "images": STUDY_FIT_IMAGES,
                    "test_mse": mean_std([study.reconstruction_mse(f.reconstruct, test.images) for f in small_fits]),
                },
                "explained_variance_ratio": [float(r) for r in ratio[: p.pca.components]],
                "explained_variance_total": float(ratio[: p.pca.components].sum()),
                **separation,
            },
        )
        folder = out.directory(Path("models/pca"))
        (folder / "config.json").write_bytes(io.json_bytes({"kind": "PCACodec", "components": p.pca.components}))
        (folder / "model.safetensors").write_bytes(safetensors_bytes(asdict(codec)))


if __name__ == "__main__":
    cli.run(main)
