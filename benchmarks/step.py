"""Where one training step's time goes, by wall clock: the step, its parts, its GEMMs alone.

``Autoencoder(784, 512, 2)`` at batch 128 on the real training set, as ``fit`` runs it. Each
case runs 100 steps per round; rounds interleave the cases so that load on a shared machine
hits all of them alike. The profiler is not used here: its per-op overhead inflates exactly
the small element-wise ops this is meant to measure.

bf16 rows: the step under autocast, and a floor with the whole model in bf16 (no casts of
fp32 master weights; timing only, not a recipe anyone should train with).

    python -m benchmarks.step [--device auto] [--rounds 6]
"""

from __future__ import annotations

import argparse
import copy
import statistics
from collections.abc import Callable

import torch

from benchmarks.common import ae_flops_per_epoch, gemm_peak, require_data, timed
from stages.lib.data import load_split
from stages.lib.models import AEConfig, Autoencoder
from stages.lib.runtime import seed_everything, setup
from stages.lib.train import ae_objective, autocast

BATCH = 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    device = setup(args.device)
    seed_everything(0)
    images = load_split(require_data(), "train", device).images
    order = torch.randperm(len(images), device=device)

    def batch(i: int) -> torch.Tensor:
        start = i * BATCH % (len(images) - BATCH)
        return images[order[start : start + BATCH]]

    model = Autoencoder(AEConfig()).to(device)
    pure_bf16 = copy.deepcopy(model).to(torch.bfloat16)
    opt = torch.optim.Adam(model.parameters(), fused=True)
    opt_bf16 = torch.optim.Adam(pure_bf16.parameters(), fused=True)

    def step(precision: str = "fp32", update: bool = True) -> Callable[[int], None]:
        def run(i: int) -> None:
            with autocast(device, precision):
                loss = ae_objective(model, batch(i), None)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if update:
                opt.step()

        return run

    def forward(i: int) -> None:
        with torch.no_grad():
            ae_objective(model, batch(i), None)

    def adam(i: int) -> None:
        opt.step()

    x, h = torch.rand(BATCH, 784, device=device), torch.rand(BATCH, 512, device=device)
    g_out, g_hid = torch.rand(BATCH, 784, device=device), torch.rand(BATCH, 512, device=device)
    w1, w4 = model.encoder[0].weight.detach(), model.decoder[2].weight.detach()

    def large_gemms(dtype: torch.dtype) -> Callable[[int], None]:
        """The step's five 100-MFLOP GEMMs in autograd's layouts; the latent ones are tiny."""
        pairs = [(a.to(dtype), b.to(dtype)) for a, b in ((x, w1.T), (h, w4.T), (g_out, w4), (g_out.T, h), (g_hid.T, x))]

        def run(i: int) -> None:
            for a, b in pairs:
                a @ b

        return run

    def pure_bf16_step(i: int) -> None:
        loss = ae_objective(pure_bf16, batch(i).bfloat16(), None)["loss"]
        opt_bf16.zero_grad(set_to_none=True)
        loss.backward()
        opt_bf16.step()

    cases = {
        "training step, fp32": step(),
        "forward + backward": step(update=False),
        "forward only (no grad)": forward,
        "Adam update (fused)": adam,
        "the 5 large GEMMs alone": large_gemms(torch.float32),
        "the 5 large GEMMs alone, bf16": large_gemms(torch.bfloat16),
        "training step, bf16 autocast": step("bf16"),
        "training step, all-bf16 model (floor)": pure_bf16_step,
    }
    step(update=False)(0)  # gradients for the Adam-only case
    ms: dict[str, list[float]] = {label: [] for label in cases}
    peaks = []
    for _ in range(args.rounds):
        peaks.append(gemm_peak(device))
        for label, run in cases.items():
            for i in range(5):
                run(i)
            ms[label].append(timed(lambda run=run: [run(i) for i in range(100)], device) * 10)

    bound = ae_flops_per_epoch(BATCH) / statistics.median(peaks) / 1e6
    print(f"\ndevice {device}; {args.rounds} rounds of 100 steps; medians, best in brackets")
    print(f"fp32 GEMM peak {statistics.median(peaks):.0f} GFLOP/s: bound {bound:.2f} ms per step")
    print("| case | ms per step | share of the fp32 step |\n|---|---|---|")
    med = {label: statistics.median(times) for label, times in ms.items()}
    for label, times in ms.items():
        print(
            f"| {label} | {med[label]:.2f} ({min(times):.2f}) | {100 * med[label] / med['training step, fp32']:.0f}% |"
        )
    # Under autocast Adam still updates fp32 master weights. Split each step into its five
    # large GEMMs, Adam and the rest; if the rest costs bf16 no less than fp32 (the rows
    # above say so), bf16 can gain at most the ratio of GEMMs plus Adam.
    adam = med["Adam update (fused)"]
    g32, g16 = med["the 5 large GEMMs alone"], med["the 5 large GEMMs alone, bf16"]
    rest32 = med["training step, fp32"] - g32 - adam
    rest16 = med["training step, bf16 autocast"] - g16 - adam
    print(f"rest of the step: fp32 {rest32:.2f} ms, bf16 {rest16:.2f} ms")
    print(f"bf16 vs fp32: GEMMs {g32 / g16:.2f}x; step at most {(g32 + adam) / (g16 + adam):.2f}x were the rest free")


if __name__ == "__main__":
    main()
