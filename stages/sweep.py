"""Sweep the latent size: an autoencoder and a PCA of every size in sweep.sizes.

All autoencoders train at once as one batched model (same recipe, same mini-batches, each
its own weights); PCA is fit once and truncated, since its axes are nested.

Reads:  params.yaml (device, precision, ae.hidden/epochs/batch_size/lr, sweep), data/idx.
Writes: models/sweep/latent_<k>/ (one checkpoint per size), metrics/sweep.json (elbows,
        PCA sizes for 90%/95% variance), plots/sweep.csv (train and test MSE per size),
        plots/sweep/loss.csv (per epoch and size), plots/sweep/error.png.
"""

from pathlib import Path

from stages.lib import cli, io, metrics, params, plots, study
from stages.lib.data import load_data
from stages.lib.models import AEConfig, Autoencoder, BatchedAutoencoder, config_dict
from stages.lib.pca import fit_pca
from stages.lib.runtime import seed_everything, setup
from stages.lib.train import Recipe, ae_objective, evaluate, fit


def main() -> None:
    p = params.load()
    sizes = p.sweep.sizes
    device = setup(p.device)
    train, test = load_data(device)

    seed_everything(p.sweep.seed)
    batched = BatchedAutoencoder([Autoencoder(AEConfig(hidden=p.ae.hidden, latent=k)) for k in sizes])
    batched.to(device)
    recipe = Recipe(p.ae.epochs, p.ae.batch_size, p.ae.lr, p.sweep.seed, p.precision)
    history = fit(batched, ae_objective, train, test, recipe, f"sweep ({len(sizes)} sizes)")
    batched.eval()
    # fit evaluated the final weights on the test set; the train error needs its own pass.
    ae = {
        "train": evaluate(batched, ae_objective, train, p.precision)["loss"].tolist(),
        "test": history[-1]["test_loss"],
    }

    codec, ratio = fit_pca(train.images, max(sizes))
    pca = {
        split: [study.reconstruction_mse(codec.truncate(k).reconstruct, x) for k in sizes]
        for split, x in (("train", train.images), ("test", test.images))
    }

    elbows = {"ae": metrics.elbow(sizes, ae["test"]), "pca": metrics.elbow(sizes, pca["test"])}
    curves = {"AE train": ae["train"], "AE test": ae["test"], "PCA train": pca["train"], "PCA test": pca["test"]}
    table = [[k, ae["train"][i], ae["test"][i], pca["train"][i], pca["test"][i]] for i, k in enumerate(sizes)]
    loss_rows = [[r["epoch"], k, r["train_loss"][i], r["test_loss"][i]] for r in history for i, k in enumerate(sizes)]
    with io.transaction() as out:
        out.write_csv(Path("plots/sweep.csv"), ["latent", "ae_train", "ae_test", "pca_train", "pca_test"], table)
        out.write_csv(Path("plots/sweep/loss.csv"), ["epoch", "latent", "train_loss", "test_loss"], loss_rows)
        out.save_figure(Path("plots/sweep/error.png"), plots.sweep_figure(sizes, curves, elbows))
        out.write_json(
            Path("metrics/sweep.json"),
            {
                "device": device.type,
                "elbow": elbows,
                "pca_components_for_variance": {
                    "90": metrics.components_for_variance(ratio, 0.90),
                    "95": metrics.components_for_variance(ratio, 0.95),
                },
            },
        )
        for i, k in enumerate(sizes):
            member = batched.member(i)
            out.save_checkpoint(Path(f"models/sweep/latent_{k:02d}"), member, config_dict(member.config))


if __name__ == "__main__":
    cli.run(main)
