"""The robustness layer's trainer: N fresh-seed models of one kind as one batched model, each
member on its own batch order, against N separate trainings, same run.

    python -m benchmarks.robustness [--device auto] [--seeds 10] [--epochs 1]
"""

from __future__ import annotations

import argparse

from torch import nn

from benchmarks.common import require_data, timed
from stages.lib.data import load_split
from stages.lib.models import VAE, AEConfig, Autoencoder, BatchedAutoencoder, BatchedVAE, VAEConfig
from stages.lib.runtime import seed_everything, setup
from stages.lib.train import Recipe, ae_objective, fit, vae_objective


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    device = setup(args.device)
    data_dir = require_data()
    train, test = load_split(data_dir, "train", device), load_split(data_dir, "test", device)
    seeds = tuple(range(100, 100 + args.seeds))
    n, e = len(seeds), args.epochs

    def timed_fit(model: nn.Module, objective, recipe: Recipe, name: str) -> float:
        return timed(lambda: fit(model, objective, train, test, recipe, name), device)

    def fresh(build):
        models = []
        for s in seeds:
            seed_everything(s)
            models.append(build().to(device))
        return models

    # Untimed: the first fit in a process pays one-off start-up.
    fit(Autoencoder(AEConfig()).to(device), ae_objective, train, test, Recipe(1, 128, 1e-3, 0), "warm-up")
    rows = []
    for kind, build, batch, objective in (
        ("autoencoders", lambda: Autoencoder(AEConfig()), BatchedAutoencoder, ae_objective),
        ("VAEs", lambda: VAE(VAEConfig()), BatchedVAE, vae_objective),
    ):
        apart = sum(
            timed_fit(m, objective, Recipe(e, 128, 1e-3, s), f"{kind} seed {s}")
            for m, s in zip(fresh(build), seeds, strict=True)
        )
        together = timed_fit(
            batch(fresh(build)).to(device), objective, Recipe(e, 128, 1e-3, seeds[0], member_seeds=seeds), kind
        )
        rows += [(f"{n} separate {kind}", apart), (f"{n} {kind} as one batched model", together)]

    print(f"\ndevice {device}, {n} seeds, {e} epoch(s)")
    print("| training | wall s | s per model-epoch |\n|---|---|---|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.1f} | {seconds / n / e:.2f} |")


if __name__ == "__main__":
    main()
