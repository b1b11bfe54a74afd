"""Judge the study's seed-dependent claims again on fresh seeds: N more autoencoders and N more
VAEs (the study's recipes, one batched model per kind), each seed re-drawing initialisation,
batch order, the VAE's noise and its sample sets; and a few more classifiers scoring the
study's own samples, the instrument's own run-to-run spread.

Reads:  params.yaml (dataset, device, precision, ae, vae, grid, sample, classifier, robustness),
        data/idx, models/vae/ and models/classifier/ (the study's samples and their judge),
        models/pca/ and metrics/pca.json (PCA's numbers, which no seed changes).
Writes: metrics/robustness.json: per claim, in how many fresh seeds (or triples of seeds) its
        rule holds; the spread of the sample measures over classifiers.
"""

from pathlib import Path

import numpy as np
import torch

from stages.lib import cli, io, metrics, params, robustness, study, study_code
from stages.lib.data import DATASETS, Split, load_data
from stages.lib.io import load_checkpoint
from stages.lib.judging import Judge, prior_samples, sample_names, walk
from stages.lib.models import VAE, AEConfig, Autoencoder, BatchedAutoencoder, BatchedVAE, VAEConfig, load_model
from stages.lib.pca import PCACodec
from stages.lib.runtime import predict, setup
from stages.lib.train import Recipe, ae_objective, fit_fresh_seeds, train_classifier, vae_objective

SAMPLE_STRIDE = 1000  # fresh seed s draws its sample sets from seeds 1000 s, 1000 s + 1, ...
CPU = torch.device("cpu")


def main() -> None:
    p = params.load()
    seeds = p.robustness.seed_list
    device = setup(p.device)
    data = load_data(device)
    train, test = (Split(split.images.to(CPU), split.labels.to(CPU)) for split in data)  # measured on the CPU
    judge = Judge.load(Path("models/classifier"), test)
    reference = predict(judge.classifier.features, test.images).numpy()  # the test images' features
    runs = []
    if seeds:
        a, v = p.ae, p.vae
        kinds = {  # builder, batched class, objective, recipe: the study's, one model per kind
            "autoencoders": (
                lambda: Autoencoder(AEConfig(hidden=a.hidden, latent=a.latent)),
                BatchedAutoencoder,
                ae_objective,
                a,
            ),
            "VAEs": (lambda: VAE(VAEConfig(hidden=v.hidden, latent=v.latent)), BatchedVAE, vae_objective, v),
        }
        (autoencoders, history), (vaes, _) = (
            fit_fresh_seeds(
                build,
                batched,
                objective,
                *data,
                Recipe(r.epochs, r.batch_size, r.lr, seeds[0], p.precision, member_seeds=seeds),
                f"robustness: {len(seeds)} {kind}",
            )
            for kind, (build, batched, objective, r) in kinds.items()
        )
        _, tensors = load_checkpoint(Path("models/pca"))
        pca = PCACodec(**tensors)
        pca_reconstructions = judge.reconstructions(pca.encode, pca.decode)
        for k, seed in enumerate(seeds):
            ae, vae = autoencoders.member(k).to(CPU).eval(), vaes.member(k).to(CPU).eval()
            run = measure(p, seed, ae, vae, judge, train, pca_reconstructions, reference)
            runs.append(run | {"ae": {"test_mse": history[-1]["test_loss"][k], **run["ae"]}})
    result = {
        "seeds": len(seeds),
        "claims": robustness.outcomes(
            [robustness.SeedRun(**run) for run in runs], io.read_json(Path("metrics/pca.json"))
        ),
        "instrument": instrument(p, data, judge, reference),
    }
    with io.transaction() as out:
        out.write_json(Path("metrics/robustness.json"), result)


def measure(
    p: params.Params,
    seed: int,
    ae: Autoencoder,
    vae: VAE,
    judge: Judge,
    train: Split,
    pca_reconstructions: dict,
    reference: np.ndarray,
) -> dict:
    """One fresh seed's autoencoder and VAE measured as the study's stages measure theirs: the
    fields of a :class:`robustness.SeedRun`."""
    test, v = judge.test, p.vae
    ae_grid, vae_grid = p.latent_grid, p.prior_grid

    def vae_mean(x: torch.Tensor) -> torch.Tensor:
        return vae.encode(x)[0]

    def separation(encode) -> dict:
        return metrics.separation(study.codes(encode, train), train.labels, study.codes(encode, test), test.labels)

    as_drawn = predict(vae.decode, study_code.prior_grid_codes(v.latent, p.prior_grid.size, seed))
    sets = {
        f"set_{j}": prior_samples(vae.decode, v.latent, p.sample.score_count, SAMPLE_STRIDE * seed + j)
        for j in range(len(p.sample.seeds))
    }
    return {
        "seed": seed,
        "ae": separation(ae.encode),
        "vae": separation(vae_mean),
        "judge": {
            "reconstructions": {
                f"ae_seed_{seed}": judge.reconstructions(ae.encode, ae.decode),
                "vae": judge.reconstructions(vae_mean, vae.decode),
                "pca": pca_reconstructions,
            },
            "grids": {
                "ae": judge.grid(walk(ae.decode, p.ae.latent, ae_grid.range, ae_grid.size, CPU), ae_grid.size),
                "vae": judge.grid(walk(vae.decode, v.latent, vae_grid.range, vae_grid.size, CPU), vae_grid.size),
                study_code.GRID_KEY: judge.grid(as_drawn, vae_grid.size),
            },
        },
        "samples": judge.sample_sets(sets, reference),
    }


def instrument(p: params.Params, data: tuple[Split, Split], judge: Judge, reference: np.ndarray) -> dict:
    """The study's own sample sets scored by its classifier (``judge``, whose features of the
    test images are ``reference``) and by ``classifier_count`` more: the standard deviation
    over classifiers of each sample measure (mean over the sets)."""
    c = p.classifier
    vae = load_model(Path("models/vae"))
    sets = {
        name: prior_samples(vae.decode, vae.config.latent, p.sample.score_count, s)
        for name, s in zip(sample_names(p.sample.seeds), p.sample.seeds, strict=True)
    }
    judges = [(judge, reference)]
    for k in range(p.robustness.classifier_count):
        seed = p.robustness.first_seed + k
        recipe = Recipe(c.epochs, c.batch_size, c.lr, seed, lr_decay=c.lr_decay)
        model, _ = train_classifier(*data, recipe, DATASETS[p.dataset], f"robustness: classifier seed {seed}")
        model = model.to(CPU).eval()
        judges.append((Judge.of(model, judge.test), predict(model.features, judge.test.images).numpy()))
    scores = [j.sample_sets(sets, features)["vae"] for j, features in judges]
    return {
        "classifiers": len(scores),
        **{
            k: float(np.std([s[k] for s in scores], ddof=1)) if len(scores) > 1 else 0.0 for k in metrics.SAMPLE_QUALITY
        },
    }


if __name__ == "__main__":
    cli.run(main)
