"""Helpers shared by the benchmarks: the data, GEMM peak, and the model's FLOP count."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

DATA = Path(os.environ.get("BENCH_DATA", "data/idx"))


def require_data() -> Path:
    if not (DATA / "train-images-idx3-ubyte").is_file():
        raise SystemExit(f"{DATA} has no data set; run `dvc repro download` first (or set BENCH_DATA)")
    return DATA


def ae_flops_per_epoch(n: int, hidden: int = 512, latent: int = 2, d: int = 784) -> float:
    """Forward + backward GEMM FLOPs of ``Autoencoder(d, hidden, latent)`` over ``n`` images.

    Forward is 2 FLOPs per weight per image; backward twice that (input and weight
    gradients): about 290 GFLOP per epoch over the 60000 training images.
    """
    weights = d * hidden + hidden * latent + latent * hidden + hidden * d
    return 6.0 * weights * n


def gemm_peak(device: torch.device, dtype: torch.dtype = torch.float32, repeats: int = 30) -> float:
    """Best GFLOP/s over the GEMMs one training step runs at batch 128, in the layouts autograd
    uses (forward ``x @ W.T``, input gradient ``g @ W``, weight gradient ``g.T @ x``), and a
    cube (1024, or 4096 on a GPU); each timed three times."""

    def shapes():
        x, w, g = (torch.randn(*s, device=device, dtype=dtype) for s in ((128, 784), (512, 784), (128, 512)))
        yield lambda: x @ w.T, 128 * 784 * 512
        yield lambda: g @ w, 128 * 512 * 784
        yield lambda: g.T @ x, 512 * 128 * 784
        # A GPU needs a larger product than the CPU to reach its peak.
        n = 4096 if device.type == "cuda" else 1024
        cube = torch.randn(n, n, device=device, dtype=dtype)
        yield lambda: cube @ cube, n**3

    best = 0.0
    for gemm, macs in shapes():
        for _ in range(3):
            gemm()
        for _ in range(3):
            sync(device)
            start = time.perf_counter()
            for _ in range(repeats):
                gemm()
            sync(device)
            best = max(best, 2 * macs * repeats / (time.perf_counter() - start) / 1e9)
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
