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

from stages.lib import cli, io, metrics, params
from stages.lib.data import load_data
from stages.lib.judging import Judge, prior_samples, sample_names
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
    _, test = load_data(device)
    judge = Judge.load(Path("models/classifier"), test)
    reference = predict(judge.classifier.features, test.images).numpy()

    count = p.sample.score_count
    sets = {
        name: prior_samples(vae.decode, vae.config.latent, count, s)
        for name, s in zip(sample_names(p.sample.seeds), p.sample.seeds, strict=True)
    }
    control = prior_samples(ae.decode, ae.config.latent, count, p.sample.seeds[0])
    half = len(reference) // 2
    with io.transaction() as out:
        folder = out.directory(Path("plots/samples"))
        for seed, images in zip(p.sample.seeds, sets.values(), strict=True):
            fig = samples_figure(images[: p.sample.count].numpy(), f"VAE samples, z ~ N(0, I), seed {seed}")
            (folder / f"seed_{seed}.png").write_bytes(io.png_bytes(fig))
        fig = samples_figure(
            control[: p.sample.count].numpy(), f"Control: AE (seed {ae_seed}) decoded from z ~ N(0, I)"
        )
        (folder / "ae_control.png").write_bytes(io.png_bytes(fig))
        scored = judge.sample_sets(sets, reference)
        out.write_json(Path("metrics/samples.json"), {
            "vae": scored["vae"],
            "vae_sets": scored["vae_sets"],
            "ae_control": metrics.sample_quality(*judge.judged(control), reference),
            "class_share_gap": scored["class_share_gap"],
            "test_halves_frechet": metrics.frechet_distance(reference[:half], reference[half:]),
        })  # fmt: skip


if __name__ == "__main__":
    cli.run(main)
