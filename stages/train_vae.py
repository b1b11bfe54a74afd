"""Train the study's VAE (fc1, fc21 = mu, fc22 = log-variance, fc3, fc4).

Loss per image: Bernoulli reconstruction (binary cross-entropy summed over pixels) plus the
closed-form KL to N(0, I) (Kingma and Welling 2014, appendix B); see stages/lib/losses.py.

Reads:  params.yaml (device, precision, vae), data/idx.
Writes: models/vae/ (config.json + model.safetensors), metrics/vae.json (test loss and its
        terms, MSE per pixel of the mean reconstruction, latent separation),
        plots/vae/loss.csv. Its figures are stage vae_figures'.
"""

from pathlib import Path

from stages.lib import cli, io, params, study
from stages.lib.data import load_data
from stages.lib.models import VAE, VAEConfig, config_dict
from stages.lib.runtime import seed_everything, setup
from stages.lib.train import Recipe, fit, history_table, vae_objective


def main() -> None:
    p = params.load()
    v = p.vae
    device = setup(p.device)
    data = load_data(device)

    seed_everything(v.seed)
    model = VAE(VAEConfig(hidden=v.hidden, latent=v.latent)).to(device)
    recipe = Recipe(v.epochs, v.batch_size, v.lr, v.seed, p.precision)
    history = fit(model, vae_objective, *data, recipe, "train_vae")
    model.eval()

    def mean_mse(x):
        return study.reconstruction_mse(lambda b: model.decode(model.encode_mean(b)), x)

    # fit evaluated the final model on the test set. A second pass would draw new latent
    # samples and report a loss that differs from the last point of the loss curve.
    test_terms = {k: v for k, v in history[-1].items() if k.startswith("test_")}
    separation = study.separation(model.encode_mean, data)
    with io.transaction() as out:
        out.write_json(
            Path("metrics/vae.json"),
            {
                "device": device.type,
                **test_terms,
                "train_mse": mean_mse(data[0].images),
                "test_mse": mean_mse(data[1].images),
                **separation,
            },
        )
        out.write_csv(Path("plots/vae/loss.csv"), *history_table(history))
        out.save_checkpoint(Path("models/vae"), model, config_dict(model.config))


if __name__ == "__main__":
    cli.run(main)
