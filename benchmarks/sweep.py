"""Sweep: every latent size as one batched model vs one training per size, same run.

With --bf16, also trains the batched model under bf16 autocast from the same initial weights
and batch order, and reports its speed and how far its test errors are from fp32's.

    python -m benchmarks.sweep [--device auto] [--epochs 1] [--bf16] [--no-separate]
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import replace

from torch import nn

from benchmarks.common import require_data, timed
from stages.lib.data import load_split
from stages.lib.models import AEConfig, Autoencoder, BatchedAutoencoder
from stages.lib.runtime import seed_everything, setup
from stages.lib.train import Recipe, ae_objective, evaluate, fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--first", type=int, default=2)
    parser.add_argument("--last", type=int, default=20)
    parser.add_argument("--bf16", action="store_true", help="also train the batched model in bf16")
    parser.add_argument("--no-separate", action="store_true", help="skip the one-model-per-size baseline")
    args = parser.parse_args()
    data_dir = require_data()
    device = setup(args.device)
    train, test = load_split(data_dir, "train", device), load_split(data_dir, "test", device)
    sizes = range(args.first, args.last + 1)
    n, e = len(sizes), args.epochs

    seed_everything(0)
    models = [Autoencoder(AEConfig(latent=k)).to(device) for k in sizes]
    batched = BatchedAutoencoder(models).to(device)
    initial = copy.deepcopy(batched)  # every batched run starts from these weights
    fp32 = Recipe(e, 128, 1e-3, 0)

    def timed_fit(model: nn.Module, recipe: Recipe, name: str) -> float:
        return timed(lambda: fit(model, ae_objective, train, test, recipe, name), device)

    # Untimed: the first fit in a process pays one-off start-up (on a GPU: context, cuBLAS,
    # kernel loading).
    fit(copy.deepcopy(initial), ae_objective, train, test, replace(fp32, epochs=1), "warm-up")
    rows = [("one batched model, fp32", timed_fit(batched, fp32, "fp32"))]
    if device.type == "cuda":  # what replaying CUDA graphs saves
        eager = replace(fp32, cuda_graphs=False)
        rows.append(("one batched model, fp32, no CUDA graphs", timed_fit(copy.deepcopy(initial), eager, "eager")))
    if not args.no_separate:
        apart = sum(timed_fit(m, fp32, f"latent {m.config.latent}") for m in models)
        rows.insert(0, (f"{n} separate trainings, fp32", apart))
    if args.bf16:
        bf16 = copy.deepcopy(initial)
        rows.append(("one batched model, bf16", timed_fit(bf16, replace(fp32, precision="bf16"), "bf16")))

    print(f"\ndevice {device}, {n} sizes, {e} epoch(s)")
    print("| sweep | wall s | s per model-epoch |\n|---|---|---|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.1f} | {seconds / n / e:.2f} |")
    if args.bf16:
        fp32_err = evaluate(batched, ae_objective, test)["loss"]
        bf16_err = evaluate(bf16, ae_objective, test)["loss"]
        rel = ((bf16_err - fp32_err).abs() / fp32_err).max().item()
        print(f"bf16 vs fp32 test MSE: largest relative difference over the sizes {100 * rel:.2f}%")


if __name__ == "__main__":
    main()
