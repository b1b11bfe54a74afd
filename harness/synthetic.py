"""Tiny synthetic MNIST look-alikes, written as IDX files by the tests (never downloaded)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np

from stages.lib.data import DATASETS, FILES, idx_bytes, sha256

ROOT = Path(__file__).resolve().parents[1]


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


def write_mirror(folder: Path, n_train: int = 300, n_test: int = 100, seed: int = 0) -> dict[str, str]:
    """Write the four ``*.gz`` files into ``folder``; return the SHA-256 of each uncompressed file."""
    folder.mkdir(parents=True, exist_ok=True)
    train, test = digits(n_train, seed), digits(n_test, seed + 1)
    digests = {}
    for name, array in zip(FILES, (*train, *test), strict=True):
        raw = idx_bytes(array)
        (folder / f"{name}.gz").write_bytes(gzip.compress(raw, mtime=0))
        digests[name] = sha256(raw)
    return digests


def copy_stages(dest: Path, trusted: dict[str, dict[str, str]]) -> None:
    """Copy ``stages/`` into ``dest``, its data table expecting the synthetic files' digests.

    ``trusted`` maps a data set's name to the digests :func:`write_mirror` returned; each
    published digest of that data set is replaced in the copy, and only there.
    """
    shutil.copytree(ROOT / "stages", dest / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    module = dest / "stages" / "lib" / "data.py"
    text = module.read_text()
    for name, digests in trusted.items():
        for file, published in DATASETS[name].sha256.items():
            assert text.count(published) == 1, f"{name} {file}: published digest not found once"
            text = text.replace(published, digests[file])
    module.write_text(text)
