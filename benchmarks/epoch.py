"""Epoch time: a faithful study-style loop vs the project's trainer, same model, same run.

The study-style loop is the usual tutorial code: torchvision ``MNIST`` with a per-image
``ToTensor`` transform, a shuffling ``DataLoader`` at batch 128, ``Adam``, and ``loss.item()``
every step. The project's loop is ``stages.lib.train.fit`` (data resident as one tensor,
fused Adam, one host sync per epoch); its time includes its per-epoch test evaluation.

    python -m benchmarks.epoch [--device auto] [--epochs 1]
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from benchmarks.common import ae_flops_per_epoch, gemm_peak, require_data, timed
from stages.lib.data import load_split
from stages.lib.models import AEConfig, Autoencoder
from stages.lib.train import Recipe, ae_objective, fit, seed_everything, setup


def study_style_epoch(raw_dir: Path, root: Path, device: torch.device) -> Callable[[], None]:
    """One epoch as the study trains: DataLoader + ToTensor, a host sync per step."""
    (root / "MNIST").mkdir()
    (root / "MNIST" / "raw").symlink_to(raw_dir.resolve())
    dataset = datasets.MNIST(str(root), train=True, download=False, transform=transforms.ToTensor())
    loader = DataLoader(dataset, batch_size=128, shuffle=True)
    model = Autoencoder(AEConfig()).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.MSELoss()

    def epoch() -> None:
        total = 0.0
        for images, _ in loader:
            x = images.view(-1, 784).to(device)
            loss = criterion(model(x), x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()

    return epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    data_dir = require_data()
    device = setup(args.device)
    seed_everything(0)
    train = load_split(data_dir, "train", device)
    test = load_split(data_dir, "test", device)
    flops = ae_flops_per_epoch(len(train))
    peak = gemm_peak(device)
    print(f"device {device}, threads {torch.get_num_threads()}, fp32 GEMM peak {peak:.0f} GFLOP/s")
    print(f"model FLOPs per epoch {flops / 1e9:.0f} GFLOP; GEMM bound {flops / peak / 1e9:.2f} s/epoch")

    root = tempfile.TemporaryDirectory()
    study = study_style_epoch(data_dir, Path(root.name), device)
    rows = []
    for label, run in (
        ("study-style (DataLoader + ToTensor)", study),
        *(
            (
                f"project trainer, {precision}",
                lambda precision=precision: fit(
                    Autoencoder(AEConfig()).to(device),
                    ae_objective,
                    train,
                    test,
                    Recipe(1, 128, 1e-3, 0, precision),
                    f"bench {precision}",
                ),
            )
            for precision in ("fp32", "bf16")
        ),
    ):
        seconds = min(timed(run, device) for _ in range(args.epochs))
        rows.append((label, seconds))
    root.cleanup()
    base = rows[0][1]
    print("\n| loop | s/epoch | speed-up vs study-style | GFLOP/s | x GEMM bound |\n|---|---|---|---|---|")
    for label, seconds in rows:
        print(
            f"| {label} | {seconds:.2f} | {base / seconds:.2f}x | {flops / seconds / 1e9:.0f} | "
            f"{seconds / (flops / peak / 1e9):.2f} |"
        )


if __name__ == "__main__":
    main()
