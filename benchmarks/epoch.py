"""Epoch time: a faithful study-style loop vs the project's trainer, same model, same run.

The study-style loop is the usual tutorial code: torchvision ``MNIST`` with a per-image
``ToTensor`` transform, a shuffling ``DataLoader`` at batch 128, ``Adam``, and ``loss.item()``
every step. The project's loop is ``stages.lib.train.fit`` (data resident as one tensor,
fused Adam, one host sync per epoch, CUDA graphs on a GPU); its time includes its per-epoch
test evaluation. On a GPU the trainer also runs without CUDA graphs, to show what they save.

Every loop first runs one warm-up epoch; then each of ``--rounds`` rounds measures the GEMM
peak and one epoch of every loop, interleaved, so that a change in the shared machine's load
hits all of them alike. Speed-ups are medians of the per-round ratios.

    python -m benchmarks.epoch [--device auto] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from benchmarks.common import ae_flops_per_epoch, gemm_peak, require_data, timed
from stages.lib.data import Split, load_split
from stages.lib.models import AEConfig, Autoencoder
from stages.lib.runtime import seed_everything, setup
from stages.lib.train import Recipe, ae_objective, fit

STUDY = "study-style (DataLoader + ToTensor)"


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


def trainer_epoch(
    train: Split, test: Split, precision: str, device: torch.device, graphs: bool = True
) -> Callable[[], None]:
    """One epoch of the project's trainer on a model that stays warm between calls."""
    model = Autoencoder(AEConfig()).to(device)
    recipe = Recipe(1, 128, 1e-3, 0, precision, cuda_graphs=graphs)

    def epoch() -> None:
        fit(model, ae_objective, train, test, recipe, f"bench {precision}")

    return epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    data_dir = require_data()
    device = setup(args.device)
    seed_everything(0)
    train = load_split(data_dir, "train", device)
    test = load_split(data_dir, "test", device)
    flops = ae_flops_per_epoch(len(train))
    print(f"device {device}, threads {torch.get_num_threads()}, model FLOPs per epoch {flops / 1e9:.0f} GFLOP")

    with tempfile.TemporaryDirectory() as root:
        loops = {
            STUDY: study_style_epoch(data_dir, Path(root), device),
            "project trainer, fp32": trainer_epoch(train, test, "fp32", device),
            "project trainer, bf16": trainer_epoch(train, test, "bf16", device),
        }
        if device.type == "cuda":  # what replaying CUDA graphs saves
            loops["project trainer, fp32, no CUDA graphs"] = trainer_epoch(train, test, "fp32", device, graphs=False)
        for run in loops.values():
            run()
        seconds: dict[str, list[float]] = {label: [] for label in loops}
        peaks = []
        for _ in range(args.rounds):
            peaks.append(gemm_peak(device))
            for label, run in loops.items():
                seconds[label].append(timed(run, device))

    def speedup(slow: str, fast: str) -> float:
        return statistics.median(a / b for a, b in zip(seconds[slow], seconds[fast], strict=True))

    peak = statistics.median(peaks)
    bound = flops / peak / 1e9
    print(f"\n{args.rounds} rounds after a warm-up epoch; medians, best in brackets")
    print(f"fp32 GEMM peak {peak:.0f} GFLOP/s (rounds: {min(peaks):.0f}-{max(peaks):.0f}); bound {bound:.2f} s/epoch")
    print("| loop | s/epoch | vs study-style | GFLOP/s | x GEMM bound |\n|---|---|---|---|---|")
    for label, times in seconds.items():
        median, best = statistics.median(times), min(times)
        print(
            f"| {label} | {median:.2f} ({best:.2f}) | {speedup(STUDY, label):.2f}x | {flops / median / 1e9:.0f} | "
            f"{median / bound:.2f} ({best / bound:.2f}) |"
        )
    print(f"bf16 vs fp32 trainer: {speedup('project trainer, fp32', 'project trainer, bf16'):.2f}x")


if __name__ == "__main__":
    main()
