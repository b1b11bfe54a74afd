from pathlib import Path

import pytest
import torch
import yaml

from stages.lib import params
from stages.lib.params import ParamsError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = yaml.safe_load((ROOT / "params.yaml").read_text())


def with_value(key: str, value):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    *parents, last = key.split(".")
    node = raw
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return yaml.safe_dump(raw)


DELETE = object()


def test_default_params_load_as_the_study():
    p = params.load(ROOT / "params.yaml")
    assert (p.ae.hidden, p.ae.latent, p.ae.epochs, p.ae.batch_size, p.ae.lr) == (512, 2, 20, 128, 1e-3)
    assert p.sweep.sizes == tuple(range(2, 21))
    assert len(p.sample.seeds) == 5
    assert (p.grid.range, p.grid.size) == (10.0, 12)


def test_tiny_profile_loads():
    params.load(ROOT / "tests" / "tiny_params.yaml")


def test_int_is_accepted_where_a_float_is_expected():
    assert params.parse(with_value("ae.lr", 1)).ae.lr == 1.0


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("ae.epochs", 0, "ae.epochs must be >= 1, got 0"),
        ("ae.epochs", -3, "ae.epochs must be >= 1, got -3"),
        ("ae.batch_size", 0, "ae.batch_size must be >= 1"),
        ("vae.batch_size", -1, "vae.batch_size must be >= 1"),
        ("ae.lr", 0, "ae.lr must be > 0"),
        ("vae.lr", -0.1, "vae.lr must be > 0"),
        ("ae.latent", 0, "ae.latent must be >= 1"),
        ("grid.size", 0, "grid.size must be >= 1"),
        ("vae.grid_size", -2, "vae.grid_size must be >= 1"),
        ("grid.range", 0, "grid.range must be > 0"),
        ("sample.count", 0, "sample.count must be >= 1"),
        ("sample.count", 5000, "sample.count (5000) must be <= sample.score_count (2000)"),
        ("classifier.epochs", 0, "classifier.epochs must be >= 1"),
        ("classifier.lr_decay", 1.5, "classifier.lr_decay must be <= 1.0, got 1.5"),
        ("classifier.lr_decay", 0, "classifier.lr_decay must be > 0"),
        ("ae.epochs", "20", "ae.epochs must be an integer, got '20'"),
        ("ae.epochs", 2.5, "ae.epochs must be an integer, got 2.5"),
        ("ae.epochs", True, "ae.epochs must be an integer, got True"),
        ("ae.lr", "fast", "ae.lr must be a number, got 'fast'"),
        ("ae.seeds", 1.5, "ae.seeds must be a list of integers, got 1.5"),
        ("ae.seeds", [1, "2"], "ae.seeds[1] must be an integer, got '2'"),
        ("ae.seeds", [1, 2, 1], "ae.seeds must not repeat values, got duplicates [1]"),
        ("ae.seeds", [], "ae.seeds must not be empty"),
        ("sample.seeds", [3, 3], "sample.seeds must not repeat values"),
        ("sweep.sizes", [], "sweep.sizes must not be empty"),
        ("sweep.sizes", [2, 4, 3], "sweep.sizes must be sorted ascending, got [2, 4, 3]"),
        ("sweep.sizes", [0, 2], "sweep.sizes[0] must be >= 1, got 0"),
        ("pca.components", 785, "pca.components must be <= 784"),
        ("precision", "fp16", "precision must be one of fp32 | bf16, got 'fp16'"),
        ("device", "tpu", "device must be auto | cpu | cuda | cuda:N, got 'tpu'"),
        ("vae", 3, "vae must be a mapping, got 3"),
        ("ae.epochs", DELETE, "missing key ae.epochs"),
        ("ae.epoch", 3, "unknown key ae.epoch; allowed keys in ae: hidden, latent, epochs"),
        ("colour", "red", "unknown key colour; allowed keys in params.yaml: device"),
    ],
)
def test_bad_values_name_the_key_and_what_was_expected(key, value, message):
    with pytest.raises(ParamsError) as err:
        params.parse(with_value(key, value))
    assert message in str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_unavailable_device_is_refused(device):
    with pytest.raises(ParamsError, match=rf"device is '{device}' but CUDA is not available here"):
        params.parse(with_value("device", device))


def test_invalid_yaml_is_a_params_error():
    with pytest.raises(ParamsError, match=r"params\.yaml is not valid YAML"):
        params.parse("ae: [1, 2\nvae: {")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ParamsError, match=r"nope\.yaml not found"):
        params.load(tmp_path / "nope.yaml")


def test_params_are_frozen():
    p = params.parse(with_value("ae.epochs", 3))
    with pytest.raises(AttributeError):
        p.ae.epochs = 4
