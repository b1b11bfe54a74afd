import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.synthetic import copy_stages, digits, write_mirror
from stages.lib import data
from stages.lib.data import DataError, fetch_verified, idx_bytes, parse_idx

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


def test_the_table_holds_the_published_digests_and_class_names():
    mnist, fashion = data.DATASETS["mnist"], data.DATASETS["fashion-mnist"]
    assert set(mnist.sha256) == set(fashion.sha256) == set(data.FILES)
    assert mnist.sha256["train-images-idx3-ubyte"].startswith("ba891046e650")
    assert mnist.sha256["t10k-labels-idx1-ubyte"].startswith("ff7bcfd416de")
    assert fashion.sha256["train-images-idx3-ubyte"].startswith("c59f468a2f67")
    assert fashion.sha256["t10k-labels-idx1-ubyte"].startswith("0402a96d92fd")
    assert mnist.classes == tuple("0123456789")
    assert fashion.classes[0] == "T-shirt/top" and fashion.classes[9] == "Ankle boot" and len(fashion.classes) == 10


SHARED = ROOT.parent / "shared"


@pytest.mark.skipif(not (SHARED / "fashion-mnist").is_dir(), reason="needs the offline copies in ../shared")
def test_each_offline_copy_passes_its_own_check_and_fails_the_other():
    name = "train-labels-idx1-ubyte"  # the smallest file of each: 60008 bytes
    for folder, dataset, other in (("mnist", "mnist", "fashion-mnist"), ("fashion-mnist", "fashion-mnist", "mnist")):
        source = [str(SHARED / folder)]
        raw = fetch_verified(name, data.DATASETS[dataset].sha256[name], source)
        assert np.bincount(parse_idx(raw)).min() >= 5400  # ten classes, each with thousands
        with pytest.raises(DataError, match=rf"^{name} from .* failed the SHA-256 check"):
            fetch_verified(name, data.DATASETS[other].sha256[name], source)


def test_fetch_from_a_folder_verifies(mirror):
    folder, digests = mirror
    raw = fetch_verified("train-labels-idx1-ubyte", digests["train-labels-idx1-ubyte"], [str(folder)])
    assert data.sha256(raw) == digests["train-labels-idx1-ubyte"]


def test_one_flipped_byte_fails_the_check_showing_both_hashes(mirror):
    folder, digests = mirror
    name = "t10k-images-idx3-ubyte"
    path = folder / f"{name}.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[500] ^= 0xFF
    path.write_bytes(gzip.compress(bytes(raw)))
    expected = digests[name]
    with pytest.raises(DataError) as err:
        fetch_verified(name, expected, [str(folder)])
    text = str(err.value)
    assert name in text and f"expected {expected}" in text and f"actual   {data.sha256(bytes(raw))}" in text


def test_truncated_gzip_is_named(mirror):
    folder, digests = mirror
    name = "train-images-idx3-ubyte"
    path = folder / f"{name}.gz"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=rf"{name}.gz from .* is not a valid gzip file"):
        fetch_verified(name, digests[name], [str(folder)])


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
    folder, digests = mirror
    name = "t10k-labels-idx1-ubyte"
    raw = fetch_verified(name, digests[name], [str(tmp_path / "empty"), str(folder)])
    assert len(raw) == 8 + 100


@pytest.mark.parametrize(("name", "variable", "official"), [
    ("mnist", "MNIST_MIRROR", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
    ("fashion-mnist", "FASHION_MNIST_MIRROR", "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
])  # fmt: skip
def test_each_data_set_tries_its_own_mirror_variable_first(monkeypatch, name, variable, official):
    monkeypatch.delenv("MNIST_MIRROR", raising=False)
    monkeypatch.delenv("FASHION_MNIST_MIRROR", raising=False)
    assert data.default_sources(data.DATASETS[name])[0] == official
    monkeypatch.setenv(variable, "/some/folder")
    sources = data.default_sources(data.DATASETS[name])
    assert sources[:2] == ["/some/folder", official]


def run_download(cwd: Path, folder: Path, variable: str = "MNIST_MIRROR") -> subprocess.CompletedProcess:
    """Run the stage with the data set's mirror variable set to ``folder``."""
    env = {"PATH": "/usr/bin:/bin", variable: str(folder), "PYTHONPATH": str(cwd)}
    cmd = [sys.executable, "-m", "stages.download"]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_download_stage_writes_all_files_or_none(tmp_path, dataset):
    folder = tmp_path / "mirror"
    copy_stages(tmp_path, {dataset: write_mirror(folder, seed=7)})
    params = (ROOT / "tests" / "tiny_params.yaml").read_text().replace("dataset: mnist", f"dataset: {dataset}")
    (tmp_path / "params.yaml").write_text(params)
    variable = data.DATASETS[dataset].mirror_env
    done = run_download(tmp_path, folder, variable)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "data" / "idx").iterdir()) == sorted(data.FILES)

    # A corrupt last file: a clear one-line error, exit 2, and no output directory at all.
    (tmp_path / "data" / "idx").rename(tmp_path / "old")
    last = folder / f"{data.FILES[-1]}.gz"
    last.write_bytes(gzip.compress(b"not the labels"))
    failed = run_download(tmp_path, folder, variable)
    assert failed.returncode == 2
    assert "\nerror: t10k-labels-idx1-ubyte from" in failed.stderr and "failed the SHA-256 check" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert list((tmp_path / "data").iterdir()) == []


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


def test_load_split_gives_numpys_quotients_for_every_byte(tmp_path):
    images = np.arange(256 * 4, dtype=np.uint8).reshape(-1, 1, 1).repeat(28, 1).repeat(28, 2)[: 256 * 2]
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(images))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(len(images), dtype=np.uint8)))
    expected = images.reshape(len(images), -1).astype(np.float32) / 255.0
    assert np.array_equal(data.load_split(tmp_path, "test").images.numpy(), expected)


def test_missing_data_file_names_the_path(tmp_path):
    with pytest.raises(DataError, match="train-images-idx3-ubyte not found; run `dvc repro download`"):
        data.load_split(tmp_path, "train")
