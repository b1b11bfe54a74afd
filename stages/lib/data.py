"""MNIST as IDX files: fetch from mirrors, verify by SHA-256, read into tensors.

The check is on the *uncompressed* bytes, so any mirror (official, a local folder, a
re-compressed copy) yields identical files and identical downstream results.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

MIRROR_ENV = "MNIST_MIRROR"
FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
SPLITS = {"train": FILES[:2], "test": FILES[2:]}
IMAGE_SIDE = 28

# IDX type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"); big-endian.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataError(RuntimeError):
    """A data file is missing, corrupt, or not what the manifest promises."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(path: Path) -> dict[str, str]:
    """Parse a ``sha256sum``-style manifest: ``<hex digest>  <file name>`` per line."""
    manifest: dict[str, str] = {}
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or len(parts[0]) != 64:
            raise DataError(f"{path}:{lineno}: expected '<sha256>  <file>', got {line!r}")
        manifest[parts[1]] = parts[0].lower()
    missing = [name for name in FILES if name not in manifest]
    if missing:
        raise DataError(f"{path} lists no checksum for {', '.join(missing)}")
    return manifest


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode one IDX file; raise :class:`DataError` naming ``name`` on any inconsistency."""
    if len(data) < 4:
        raise DataError(f"{name}: {len(data)} bytes is too short for an IDX header")
    zero, code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or code not in _IDX_DTYPES:
        raise DataError(
            f"{name}: bad IDX magic number 0x{data[:4].hex()} "
            f"(expected 0x0000 then a type code in {[hex(c) for c in _IDX_DTYPES]})"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: header declares {ndim} dimensions but the file ends early")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(f"{name}: header says shape {dims} ({expected} bytes) but the file has {len(data)} bytes")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array as IDX (used by tests to build synthetic data sets)."""
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_DTYPES.items()}
    code = codes[array.dtype.newbyteorder("=")]
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(_IDX_DTYPES[code]).tobytes()


def check_split(images: np.ndarray, labels: np.ndarray, split: str) -> None:
    img, lab = SPLITS[split]
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataError(f"{img}: expected shape (N, 28, 28), got {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{lab}: expected {len(images)} labels, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{lab}: labels must be digits 0..9")


def default_sources() -> list[str]:
    """``$MNIST_MIRROR`` first (a folder or URL), then torchvision's official mirrors."""
    from torchvision.datasets import MNIST  # the maintained list, not a copy of it

    env = os.environ.get(MIRROR_ENV, "").strip()
    return ([env] if env else []) + list(MNIST.mirrors)


def _fetch(source: str, filename: str) -> bytes:
    if "://" in source:
        url = source.rstrip("/") + "/" + filename
        request = urllib.request.Request(url, headers={"User-Agent": "mnist-ae-study"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()
    return (Path(source) / filename).read_bytes()


def fetch_verified(name: str, expected_sha: str, sources: list[str]) -> bytes:
    """Return the uncompressed bytes of ``name`` from the first source that has it.

    A source that lacks the file or cannot be reached is skipped; a file that is found but
    is corrupt or has the wrong SHA-256 is an error at once (a mirror serving bad data
    must be noticed, not papered over).
    """
    filename = name + ".gz"
    tried = []
    for source in sources:
        try:
            packed = _fetch(source, filename)
        except (OSError, urllib.error.URLError, ValueError) as err:
            tried.append(f"  {source}: {getattr(err, 'reason', None) or err}")
            continue
        try:
            data = gzip.decompress(packed)
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(f"{filename} from {source} is not a valid gzip file: {err}") from None
        actual = sha256(data)
        if actual != expected_sha:
            raise DataError(
                f"{name} from {source} failed the SHA-256 check:\n  expected {expected_sha}\n  actual   {actual}"
            )
        print(f"download: {name} from {source} ({len(data):,} bytes, sha256 ok)", file=sys.stderr)
        return data
    raise DataError(f"could not fetch {filename} from any source; tried:\n" + "\n".join(tried))


@dataclass(frozen=True)
class Split:
    """One split on a device: images as float32 (N, 784) in [0, 1], labels as int64 (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


def read_split(data_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    img_name, lab_name = SPLITS[split]
    arrays = []
    for name in (img_name, lab_name):
        path = Path(data_dir) / name
        if not path.is_file():
            raise DataError(f"{path} not found; run `dvc repro download` first")
        arrays.append(parse_idx(path.read_bytes(), str(path)))
    images, labels = arrays
    check_split(images, labels, split)
    return images, labels


def load_split(data_dir: Path, split: str, device: torch.device | str = "cpu") -> Split:
    """Load a split once into memory as tensors on ``device`` (no per-image transforms)."""
    images, labels = read_split(data_dir, split)
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    return Split(x.to(device), y.to(device))
