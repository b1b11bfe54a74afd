"""Tiny synthetic MNIST look-alikes, written as IDX files by the tests (never downloaded)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from stages.lib.data import FILES, idx_bytes, sha256


def digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 28x28 uint8 images whose class is a bright 8x8 block at one of ten places, plus noise."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 10).astype(np.uint8)
    rng.shuffle(labels)
    images = rng.integers(0, 40, size=(n, 28, 28), dtype=np.uint8)
    for i, c in enumerate(labels):
        r, col = 2 + 12 * (c // 5), 1 + 5 * (c % 5)
        images[i, r : r + 8, col : col + 6] = 230
    return images, labels


def write_mirror(folder: Path, n_train: int = 300, n_test: int = 100, seed: int = 0) -> str:
    """Write the four ``*.gz`` files into ``folder``; return a manifest text for them."""
    folder.mkdir(parents=True, exist_ok=True)
    train, test = digits(n_train, seed), digits(n_test, seed + 1)
    arrays = dict(zip(FILES, (*train, *test), strict=True))
    lines = []
    for name, array in arrays.items():
        raw = idx_bytes(array)
        (folder / f"{name}.gz").write_bytes(gzip.compress(raw, mtime=0))
        lines.append(f"{sha256(raw)}  {name}")
    return "\n".join(lines) + "\n"
