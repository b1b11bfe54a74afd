"""Train the study's 2-D autoencoder with one seed (one instance of a DVC matrix stage).

Reads:  params.yaml (device, precision, ae.hidden/latent/epochs/batch_size/lr), data/idx.
Writes: models/ae/seed_<seed>/ (config.json + model.safetensors),
        metrics/ae/seed_<seed>.json (train/test MSE per pixel, latent separation),
        plots/ae/seed_<seed>/loss.csv (per epoch). Its figures are stage ae_figures'.
"""

import argparse
from pathlib import Path

from stages.lib import cli, io, params, study
from stages.lib.data import load_data
from stages.lib.models import AEConfig, Autoencoder, config_dict
from stages.lib.runtime import seed_everything, setup
from stages.lib.train import Recipe, ae_objective, evaluate, fit, history_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True)
    seed = parser.parse_args().seed
    p = params.load()
    device = setup(p.device)
    data = load_data(device)

    seed_everything(seed)
    model = Autoencoder(AEConfig(hidden=p.ae.hidden, latent=p.ae.latent)).to(device)
    recipe = Recipe(p.ae.epochs, p.ae.batch_size, p.ae.lr, seed, p.precision)
    history = fit(model, ae_objective, *data, recipe, f"train_ae seed {seed}")
    model.eval()

    tag = f"seed_{seed}"
    separation = study.separation(model.encode, data)
    with io.transaction() as out:
        out.write_json(
            Path("metrics/ae") / f"{tag}.json",
            {
                "device": device.type,
                "train_mse": evaluate(model, ae_objective, data[0], p.precision)["loss"].item(),
                "test_mse": history[-1]["test_loss"],  # fit evaluated the final model on the test set
                **separation,
            },
        )
        out.write_csv(Path("plots/ae") / tag / "loss.csv", *history_table(history))
        out.save_checkpoint(Path("models/ae") / tag, model, config_dict(model.config))


if __name__ == "__main__":
    cli.run(main)
