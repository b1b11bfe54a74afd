"""One training loop for every model in the study.

The data set lives on the device as one tensor; each epoch draws a permutation from a
generator seeded by the run's seed, and losses are accumulated on the device so the host
waits for the device once per epoch, not once per step.
"""

from __future__ import annotations

import ctypes
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stages.lib.data import Split
from stages.lib.losses import mse_per_pixel, vae_loss
from stages.lib.models import VAE

Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]
# Inference batch: 256 ran the batched sweep's evaluation 25% faster than 2048 on the CPU.
EVAL_BATCH = 256


@dataclass(frozen=True)
class Recipe:
    epochs: int
    batch_size: int
    lr: float
    seed: int
    precision: str = "fp32"
    lr_decay: float = 1.0  # learning rate multiplied by this after every epoch; 1 = constant


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) from one params value."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def setup(device: str) -> torch.device:
    """Resolve ``device: auto`` and make kernels deterministic on this machine."""
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    # As training converges, some values become subnormal and x86 arithmetic on them is
    # very slow: epochs slowed from 2.8 s to 5.3 s by epoch 7. Flushing them to zero
    # changed no printed digit of the losses and keeps every epoch at the first one's speed.
    torch.set_flush_denormal(True)
    _reuse_freed_memory()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        # cuBLAS needs a fixed workspace to be deterministic.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # Every op used here is deterministic on the CPU, which the tests check byte for byte. On
    # CUDA a few kernels (the classifier's loss backward) have no deterministic variant:
    # there a warning beats refusing to run.
    torch.use_deterministic_algorithms(True, warn_only=device.startswith("cuda"))
    # Deterministic mode also fills every new tensor with NaN, a guard against reading
    # uninitialised memory that no op here does; they took 17% of a profiled bf16 step.
    torch.utils.deterministic.fill_uninitialized_memory = False
    return torch.device(device)


def _reuse_freed_memory() -> None:
    """Keep freed activation buffers in the process instead of handing them back to the OS.

    By default glibc returns large freed blocks to the OS (unmapping them, or trimming the
    heap), so the batched sweep's activations and gradients page-faulted in afresh: about
    1,600 faults per step in steady state. Fixed mmap and trim thresholds let the heap
    reuse those blocks: about 200 faults per step, and 74 instead of 96 ms per step in one
    paired run. Peak memory stays the same (one model's steps barely fault either way).
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, for one): leave the allocator alone
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # from <malloc.h>
    # 32 MiB, the ceiling mallopt(3) documents for 64-bit; the sweep's largest per-step
    # tensor, the first layer's weight gradient, is 30.5 MB.
    mallopt(m_mmap_threshold, 32 << 20)
    mallopt(m_trim_threshold, 1 << 30)


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def ae_objective(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """MSE per pixel; one value per member for a :class:`BatchedAutoencoder`."""
    return {"loss": mse_per_pixel(model(x), x)}


def vae_objective(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    assert isinstance(model, VAE)
    mu, logvar = model.encode(x)
    logits = model.decode_logits(model.reparameterize(mu, logvar))
    return vae_loss(logits, x, mu, logvar)


def classifier_objective(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    logits = model(x)
    return {"loss": F.cross_entropy(logits.float(), y), "error": (logits.argmax(1) != y).float().mean()}


def _batches(n: int, batch_size: int, order: torch.Tensor | None = None) -> Iterator[torch.Tensor | slice]:
    for start in range(0, n, batch_size):
        yield slice(start, start + batch_size) if order is None else order[start : start + batch_size]


class _Means:
    """Running, sample-weighted means of loss terms, kept on the device (no host sync)."""

    def __init__(self) -> None:
        self.totals: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, terms: dict[str, torch.Tensor], n: int) -> None:
        for k, v in terms.items():
            self.totals[k] = self.totals.get(k, 0) + v.detach() * n
        self.count += n

    def result(self) -> dict[str, torch.Tensor]:
        return {k: v / self.count for k, v in self.totals.items()}


@torch.no_grad()
def evaluate(model: nn.Module, objective: Objective, data: Split, precision: str = "fp32") -> dict[str, torch.Tensor]:
    """Mean of each loss term over a split (values stay on the device)."""
    was_training = model.training
    model.eval()
    means = _Means()
    with autocast(data.images.device, precision):
        for idx in _batches(len(data), EVAL_BATCH):
            means.add(objective(model, data.images[idx], data.labels[idx]), len(data.labels[idx]))
    model.train(was_training)
    return means.result()


@torch.no_grad()
def predict(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Apply ``fn`` to ``x`` in large batches and concatenate the results."""
    return torch.cat([fn(x[idx]) for idx in _batches(len(x), EVAL_BATCH)])


def to_python(terms: dict[str, torch.Tensor], prefix: str) -> dict[str, float | list[float]]:
    return {f"{prefix}{k}": v.tolist() for k, v in terms.items()}


def fit(
    model: nn.Module, objective: Objective, train: Split, test: Split, recipe: Recipe, name: str
) -> list[dict[str, float | list[float]]]:
    """Train with Adam; return one record per epoch with train (running) and test losses.

    ``objective`` returns named terms; ``loss`` is minimised (summed first when it holds one
    value per member of a batched model, whose gradients are independent).
    """
    model.train()
    # Fused Adam: one kernel over all parameters instead of a loop of small ops; on 2 CPU
    # cores it cut the step time by 20% (single model) to 45% (batched sweep).
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr, fused=True)
    schedule = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=recipe.lr_decay)
    order_gen = torch.Generator().manual_seed(recipe.seed)
    device = train.images.device
    history = []
    for epoch in range(1, recipe.epochs + 1):
        start = time.perf_counter()
        order = torch.randperm(len(train), generator=order_gen).to(device)
        means = _Means()
        for idx in _batches(len(train), recipe.batch_size, order):
            xb, yb = train.images[idx], train.labels[idx]
            with autocast(device, recipe.precision):
                terms = objective(model, xb, yb)
            opt.zero_grad(set_to_none=True)
            terms["loss"].sum().backward()
            opt.step()
            means.add(terms, len(yb))
        schedule.step()
        record: dict[str, float | list[float]] = {"epoch": epoch}
        record |= to_python(means.result(), "train_")
        record |= to_python(evaluate(model, objective, test, recipe.precision), "test_")
        history.append(record)
        seconds = time.perf_counter() - start
        print(f"{name}: epoch {epoch}/{recipe.epochs} {_summary(record)} ({seconds:.1f} s)", file=sys.stderr)
    return history


def _summary(record: dict[str, float | list[float]]) -> str:
    parts = []
    for k in ("train_loss", "test_loss"):
        v = record[k]
        parts.append(f"{k} {np.mean(v):.5f}" + (" (mean of members)" if isinstance(v, list) else ""))
    return ", ".join(parts)
