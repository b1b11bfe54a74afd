"""Generate sets of images from the VAE by decoding z ~ N(0, I), one set per seed, and score
them with the image classifier; the autoencoder decoded from the same prior is the control.

Reads:  params.yaml (sample), models/vae/, models/ae/seed_<first seed>/, models/classifier/,
        data/idx (test images: the reference for the Frechet distance).
Writes: plots/samples/seed_<s>.png per seed and ae_control.png;
        metrics/samples.json (per set: confidence, class entropy, Frechet distance; how far
        the sets' class shares differ).
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from stages.lib import cli, io, metrics, params, quality
from stages.lib.data import load_data
from stages.lib.models import load_model
from stages.lib.plots import samples_figure
from stages.lib.runtime import predict, setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ae-seed", type=int, required=True, help="the AE run used as the control")
    ae_seed = parser.parse_args().ae_seed
    p = params.load()
    device = setup("cpu")  # a few thousand decodes: not worth a device transfer
    vae = load_model(Path("models/vae"))
    ae = load_model(Path(f"models/ae/seed_{ae_seed}"))
    judge = load_model(Path("models/classifier"))
    _, test = load_data(device)
    reference = predict(judge.features, test.images).numpy()

    def generate(decode, latent: int, seed: int) -> np.ndarray:
        z = torch.randn(p.sample.score_count, latent, generator=torch.Generator().manual_seed(seed))
        return predict(decode, z).numpy()

    def judged(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        features = predict(judge.features, torch.from_numpy(images))
        return torch.softmax(predict(judge.head, features), 1).numpy(), features.numpy()

    sets = {f"vae_seed_{s}": generate(vae.decode, vae.config.latent, s) for s in p.sample.seeds}
    control = generate(ae.decode, ae.config.latent, p.sample.seeds[0])
    judgements = {name: judged(images) for name, images in sets.items()}
    scores = {name: metrics.sample_quality(*j, reference) for name, j in judgements.items()}
    half = len(reference) // 2
    with io.transaction() as out:
        folder = out.directory(Path("plots/samples"))
        for seed, images in zip(p.sample.seeds, sets.values(), strict=True):
            fig = samples_figure(images[: p.sample.count], f"VAE samples, z ~ N(0, I), seed {seed}")
            (folder / f"seed_{seed}.png").write_bytes(io.png_bytes(fig))
        fig = samples_figure(control[: p.sample.count], f"Control: AE (seed {ae_seed}) decoded from z ~ N(0, I)")
        (folder / "ae_control.png").write_bytes(io.png_bytes(fig))
        out.write_json(Path("metrics/samples.json"), {
            "vae": {k: float(np.mean([s[k] for s in scores.values()])) for k in metrics.SAMPLE_QUALITY},
            "vae_sets": scores,
            "ae_control": metrics.sample_quality(*judged(control), reference),
            "class_share_gap": quality.class_share_gap([probs.argmax(1) for probs, _ in judgements.values()]),
            "test_halves_frechet": metrics.frechet_distance(reference[:half], reference[half:]),
        })  # fmt: skip


if __name__ == "__main__":
    cli.run(main)
