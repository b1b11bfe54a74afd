"""Train the robustness layer's fresh models: ``fresh.seed_count`` more autoencoders and
VAEs with the study's recipes (one batched model per kind), and ``fresh.classifier_count``
more image classifiers, the instrument's own spread. Only training happens here, so that a
change to how models are judged or drawn retrains nothing.

Fresh seed s draws its autoencoder from one seed stream and its VAE from another
(``runtime.stream_seed``): the two share no initial weights and no batch order, as the study's
VAE (seed 0) and autoencoders (seeds 1-3) shared none.

Reads:  params.yaml (dataset, device, precision, the ae and vae recipes, classifier,
        fresh.seed_count/first_seed/classifier_count), data/idx.
Writes: models/fresh/: ae_seed_<s>/, vae_seed_<s>/, classifier_seed_<s>/ (config.json +
        model.safetensors) and test_losses.json (each fresh model's last test loss).
"""

from pathlib import Path

from stages.lib import cli, io, params
from stages.lib.data import DATASETS, load_data
from stages.lib.models import VAE, AEConfig, Autoencoder, BatchedAutoencoder, BatchedVAE, VAEConfig, config_dict
from stages.lib.runtime import setup, stream_seed
from stages.lib.train import Recipe, ae_objective, fit_fresh_seeds, train_classifier, vae_objective

FRESH = Path("models/fresh")
STREAMS = {"ae": 0, "vae": 1}  # the seed stream of each kind of model


def main() -> None:
    p = params.load()
    seeds = p.fresh.seed_list
    device = setup(p.device)
    data = load_data(device)
    a, v, c = p.ae, p.vae, p.classifier
    kinds = {  # builder, batched class, objective, (epochs, batch size, lr): the study's recipes
        "ae": (
            lambda: Autoencoder(AEConfig(hidden=a.hidden, latent=a.latent)),
            BatchedAutoencoder,
            ae_objective,
            (a.epochs, a.batch_size, a.lr),
        ),
        "vae": (
            lambda: VAE(VAEConfig(hidden=v.hidden, latent=v.latent)),
            BatchedVAE,
            vae_objective,
            (v.epochs, v.batch_size, v.lr),
        ),
    }
    with io.transaction() as out:
        folder = out.directory(FRESH)
        test_losses = {}
        for kind, (build, batched, objective, (epochs, batch_size, lr)) in kinds.items() if seeds else ():
            streams = tuple(stream_seed(s, STREAMS[kind]) for s in seeds)
            recipe = Recipe(epochs, batch_size, lr, streams[0], p.precision, member_seeds=streams)
            name = f"train_fresh: {len(seeds)} {kind}s"
            model, history = fit_fresh_seeds(build, batched, objective, *data, recipe, name)
            for k, seed in enumerate(seeds):
                member = model.member(k).eval()
                io.write_checkpoint(folder / f"{kind}_seed_{seed}", member, config_dict(member.config))
            test_losses[kind] = {str(seed): history[-1]["test_loss"][k] for k, seed in enumerate(seeds)}
        for seed in p.fresh.classifier_seed_list:
            recipe = Recipe(c.epochs, c.batch_size, c.lr, seed, lr_decay=c.lr_decay)
            model, _ = train_classifier(*data, recipe, DATASETS[p.dataset], f"train_fresh: classifier seed {seed}")
            io.write_checkpoint(folder / f"classifier_seed_{seed}", model.eval(), config_dict(model.config))
        (folder / "test_losses.json").write_bytes(io.json_bytes(test_losses))


if __name__ == "__main__":
    cli.run(main)
