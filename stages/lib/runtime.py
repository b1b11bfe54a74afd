"""The process around a stage: the device, deterministic kernels, seeds, inference batches.

Every stage that touches torch calls :func:`setup` first. Kept apart from the training loop
(``train.py``) so that stages which only load models and predict (pca, sample, report) do
not depend on the trainer, and a change to the loop does not rerun them.
"""

from __future__ import annotations

import ctypes
import os
import random
import sys
from collections.abc import Callable, Iterator

import numpy as np
import torch

# Inference batch: 256 ran the batched sweep's evaluation 25% faster than 2048 on the CPU.
EVAL_BATCH = 256


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) from one params value."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def stream_seed(seed: int, stream: int) -> int:
    """Seed number ``stream`` derived from ``seed`` (NumPy's SeedSequence): models of different
    streams drawn from one seed share no random numbers: no initial weights, no batch order."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


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
    # there a warning beats refusing to run. This is use_deterministic_algorithms(True,
    # warn_only=...) without its import of torch._inductor, which we never use: it took
    # 1.7 s of the start of stages that build no optimiser (sample, report) on 2 cores.
    torch.set_deterministic_debug_mode("warn" if device.startswith("cuda") else "error")
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


def batches(n: int, batch_size: int, order: torch.Tensor | None = None) -> Iterator[torch.Tensor | slice]:
    """Index the ``n`` samples in batches: slices in order, or runs of ``order`` (along its
    last axis: a (members, n) order gives each member its own batch)."""
    for start in range(0, n, batch_size):
        yield slice(start, start + batch_size) if order is None else order[..., start : start + batch_size]


@torch.no_grad()
def predict(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Apply ``fn`` to ``x`` in large batches and concatenate the results."""
    return torch.cat([fn(x[idx]) for idx in batches(len(x), EVAL_BATCH)])
