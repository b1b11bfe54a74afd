"""Helpers shared by the benchmarks: the data, GEMM peak, and the model's FLOP count."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

DATA = Path(os.environ.get("BENCH_DATA", "data/mnist"))


def require_data() -> Path:
    if not (DATA / "train-images-idx3-ubyte").is_file():
        raise SystemExit(f"{DATA} has no MNIST; run `dvc repro download` first (or set BENCH_DATA)")
    return DATA


def ae_flops_per_epoch(n: int, hidden: int = 512, latent: int = 2, d: int = 784) -> float:
    """Forward + backward GEMM FLOPs of ``Autoencoder(d, hidden, latent)`` over ``n`` images.

    Forward is 2 FLOPs per weight per image; backward twice that (input and weight
    gradients), the same count the issue uses (about 290 GFLOP per epoch).
    """
    weights = d * hidden + hidden * latent + latent * hidden + hidden * d
    return 6.0 * weights * n


def gemm_peak(device: torch.device, dtype: torch.dtype = torch.float32, repeats: int = 30) -> float:
    """Best GFLOP/s of the GEMM shapes the model runs at batch 128."""
    best = 0.0
    for m, k, n in ((128, 784, 512), (128, 512, 784), (784, 128, 512), (1024, 1024, 1024)):
        a, b = torch.randn(m, k, device=device, dtype=dtype), torch.randn(k, n, device=device, dtype=dtype)
        for _ in range(3):
            a @ b
        sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        sync(device)
        best = max(best, 2 * m * k * n * repeats / (time.perf_counter() - start) / 1e9)
    return best


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start
