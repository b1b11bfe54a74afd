"""Sweep: every latent size as one batched model vs one training per size, same run.

python -m benchmarks.sweep [--device auto] [--epochs 1] [--sizes 2..20]
"""

from __future__ import annotations

import argparse

from benchmarks.common import require_data, timed
from stages.lib.data import load_split
from stages.lib.models import AEConfig, Autoencoder, BatchedAutoencoder
from stages.lib.train import Recipe, ae_objective, fit, seed_everything, setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--first", type=int, default=2)
    parser.add_argument("--last", type=int, default=20)
    args = parser.parse_args()
    data_dir = require_data()
    device = setup(args.device)
    train, test = load_split(data_dir, "train", device), load_split(data_dir, "test", device)
    sizes = range(args.first, args.last + 1)
    recipe = Recipe(args.epochs, 128, 1e-3, 0)

    seed_everything(0)
    models = [Autoencoder(AEConfig(latent=k)).to(device) for k in sizes]
    batched = BatchedAutoencoder(models).to(device)
    together = timed(lambda: fit(batched, ae_objective, train, test, recipe, "batched"), device)
    apart = sum(
        timed(lambda m=m: fit(m, ae_objective, train, test, recipe, f"latent {m.config.latent}"), device)
        for m in models
    )
    n, e = len(sizes), args.epochs
    print(f"\ndevice {device}, {n} sizes, {e} epoch(s)")
    print("| sweep | wall s | s per model-epoch |\n|---|---|---|")
    print(f"| {n} separate trainings | {apart:.1f} | {apart / n / e:.2f} |")
    print(f"| one batched model | {together:.1f} | {together / n / e:.2f} |")
    print(f"speed-up {apart / together:.2f}x")


if __name__ == "__main__":
    main()
