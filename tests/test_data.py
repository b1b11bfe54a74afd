import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stages.lib import data
from stages.lib.data import DataError, fetch_verified, idx_bytes, parse_idx, read_manifest
from tests.synthetic import digits

ROOT = Path(__file__).resolve().parents[1]


def test_idx_round_trip():
    images, labels = digits(20, seed=3)
    assert np.array_equal(parse_idx(idx_bytes(images)), images)
    assert np.array_equal(parse_idx(idx_bytes(labels)), labels)
    floats = np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)
    assert np.array_equal(parse_idx(idx_bytes(floats)), floats)


def test_wrong_magic_number_is_named():
    raw = bytearray(idx_bytes(np.zeros((2, 28, 28), np.uint8)))
    raw[0] = 1
    with pytest.raises(DataError, match=r"f.idx: bad IDX magic number 0x01000803"):
        parse_idx(bytes(raw), "f.idx")


def test_size_that_disagrees_with_the_header_is_named():
    raw = idx_bytes(np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError, match=r"f.idx: header says shape \(2, 28, 28\) \(1584 bytes\) but the file has 1583"):
        parse_idx(raw[:-1], "f.idx")
    with pytest.raises(DataError, match="but the file has 1585 bytes"):
        parse_idx(raw + b"\0", "f.idx")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_fuzzed_bytes_give_an_array_or_a_data_error(raw):
    try:
        array = parse_idx(raw)
    except DataError:
        return
    assert array.ndim == raw[3]
    assert array.nbytes == len(raw) - 4 - 4 * raw[3]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 4), st.binary(max_size=24))
def test_fuzzed_valid_headers_with_random_bodies(ndim, body):
    dims = [len(body) // 2, 2, 1, 1][:ndim]
    header = bytes([0, 0, 0x08, ndim]) + b"".join(d.to_bytes(4, "big") for d in dims)
    try:
        array = parse_idx(header + body)
    except DataError:
        return
    assert array.shape == tuple(dims)


def test_manifest_must_list_every_file(tmp_path):
    path = tmp_path / "m.sha256"
    path.write_text("0" * 64 + "  train-images-idx3-ubyte\n")
    with pytest.raises(DataError, match="lists no checksum for train-labels-idx1-ubyte"):
        read_manifest(path)
    path.write_text("abc train-images-idx3-ubyte\n")
    with pytest.raises(DataError, match=r"m.sha256:1: expected '<sha256>  <file>'"):
        read_manifest(path)


def test_repo_manifest_holds_the_published_mnist_digests():
    manifest = read_manifest(ROOT / "data" / "mnist.sha256")
    assert manifest["train-images-idx3-ubyte"].startswith("ba891046e650")
    assert manifest["t10k-labels-idx1-ubyte"].startswith("ff7bcfd416de")


def test_fetch_from_a_folder_verifies(mirror):
    folder, manifest = mirror
    digests = read_manifest(manifest)
    raw = fetch_verified("train-labels-idx1-ubyte", digests["train-labels-idx1-ubyte"], [str(folder)])
    assert data.sha256(raw) == digests["train-labels-idx1-ubyte"]


def test_one_flipped_byte_fails_the_check_showing_both_hashes(mirror):
    folder, manifest = mirror
    name = "t10k-images-idx3-ubyte"
    path = folder / f"{name}.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[500] ^= 0xFF
    path.write_bytes(gzip.compress(bytes(raw)))
    expected = read_manifest(manifest)[name]
    with pytest.raises(DataError) as err:
        fetch_verified(name, expected, [str(folder)])
    text = str(err.value)
    assert name in text and f"expected {expected}" in text and f"actual   {data.sha256(bytes(raw))}" in text


def test_truncated_gzip_is_named(mirror):
    folder, manifest = mirror
    name = "train-images-idx3-ubyte"
    path = folder / f"{name}.gz"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=rf"{name}.gz from .* is not a valid gzip file"):
        fetch_verified(name, read_manifest(manifest)[name], [str(folder)])


def test_missing_everywhere_lists_every_source_tried(tmp_path, mirror):
    folder, _ = mirror
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    sources = [str(tmp_path / "nowhere"), str(folder), "http://127.0.0.1:9/mnist"]
    with pytest.raises(DataError) as err:
        fetch_verified("train-labels-idx1-ubyte", "0" * 64, sources)
    text = str(err.value)
    assert "could not fetch train-labels-idx1-ubyte.gz from any source" in text
    for source in sources:
        assert f"  {source}: " in text


def test_falls_through_to_the_next_source(tmp_path, mirror):
    folder, manifest = mirror
    name = "t10k-labels-idx1-ubyte"
    raw = fetch_verified(name, read_manifest(manifest)[name], [str(tmp_path / "empty"), str(folder)])
    assert len(raw) == 8 + 100


def test_env_mirror_comes_first(monkeypatch):
    monkeypatch.setenv(data.MIRROR_ENV, "/some/folder")
    sources = data.default_sources()
    assert sources[0] == "/some/folder"
    assert any(s.startswith("https://") for s in sources[1:])


def run_download(cwd: Path, folder: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "MNIST_MIRROR": str(folder), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "stages.download"], cwd=cwd, env=env, capture_output=True, text=True)


def test_download_stage_writes_all_files_or_none(tmp_path, mirror):
    folder, manifest = mirror
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mnist.sha256").write_text(manifest.read_text())
    done = run_download(tmp_path, folder)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "data" / "mnist").iterdir()) == sorted(data.FILES)

    # A corrupt last file: a clear one-line error, exit 2, and no output directory at all.
    (tmp_path / "data" / "mnist").rename(tmp_path / "old")
    last = folder / f"{data.FILES[-1]}.gz"
    last.write_bytes(gzip.compress(b"not the labels"))
    failed = run_download(tmp_path, folder)
    assert failed.returncode == 2
    assert "\nerror: t10k-labels-idx1-ubyte from" in failed.stderr and "failed the SHA-256 check" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["mnist.sha256"]


def test_load_split_checks_label_count(tmp_path):
    images, labels = digits(10, seed=0)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(images))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(labels[:9]))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: expected 10 labels"):
        data.load_split(tmp_path, "train")


def test_load_split_scales_to_unit_range(tmp_path):
    images, labels = digits(10, seed=0)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(images))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    split = data.load_split(tmp_path, "test")
    assert split.images.shape == (10, 784) and split.images.dtype.is_floating_point
    assert float(split.images.max()) == pytest.approx(230 / 255)
    assert split.labels.tolist() == labels.tolist()


def test_missing_data_file_names_the_path(tmp_path):
    with pytest.raises(DataError, match="train-images-idx3-ubyte not found; run `dvc repro download`"):
        data.load_split(tmp_path, "train")
