import re
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
    assert (p.latent_grid.range, p.latent_grid.cells) == (10.0, 12)


def test_tiny_profile_loads():
    params.load(ROOT / "tests" / "tiny_params.yaml")


def test_int_is_accepted_where_a_float_is_expected():
    assert params.parse(with_value("ae.lr", 1)).ae.lr == 1.0


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("ae.epochs", 0, "ae.epochs must be between 1 and 10000, got 0"),
        ("ae.epochs", -3, "ae.epochs must be between 1 and 10000, got -3"),
        ("ae.batch_size", 0, "ae.batch_size must be between 1 and 60000"),
        ("vae.batch_size", -1, "vae.batch_size must be between 1 and 60000"),
        ("ae.lr", 0, "ae.lr must be > 0"),
        ("vae.lr", -0.1, "vae.lr must be > 0"),
        ("ae.latent", 0, "ae.latent must be between 2 and 784"),
        ("latent_grid.cells", 0, "latent_grid.cells must be between 2 and 64"),
        ("prior_grid.cells", -2, "prior_grid.cells must be between 2 and 64"),
        ("latent_grid.range", 0, "latent_grid.range must be between 0.001 and 1000"),
        ("sample.count", 0, "sample.count must be between 1 and 1024"),
        ("sample.score_count", 50, "sample.count (64) must be <= sample.score_count (50)"),
        ("classifier.epochs", 0, "classifier.epochs must be between 1 and 10000"),
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
        ("sweep.sizes", [0, 2], "sweep.sizes[0] must be between 1 and 784, got 0"),
        ("pca.components", 785, "pca.components must be between 2 and 784"),
        ("precision", "fp16", "precision must be one of fp32 | bf16, got 'fp16'"),
        ("device", "tpu", "device must be auto | cpu | cuda | cuda:N, got 'tpu'"),
        ("vae", 3, "vae must be a mapping, got 3"),
        ("ae.epochs", DELETE, "missing key ae.epochs"),
        ("ae.epoch", 3, "unknown key ae.epoch; allowed keys in ae: hidden, latent, epochs"),
        ("colour", "red", "unknown key colour; allowed keys in params.yaml: dataset, device"),
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


# At least one bad value for every key of params.yaml; each must fail naming its key.
BAD_VALUES = {
    "dataset": ["imagenet", "MNIST", 1],
    "device": ["tpu", "cuda:x", 0],
    "precision": ["fp16", "bf16 "],
    "ae.hidden": [0, 10**6, 512.0],
    "ae.latent": [1, 785],  # the 2-D figures need two axes
    "ae.epochs": [0, 10**5],
    "ae.batch_size": [0, 60_001],
    "ae.lr": [0, -1e-3, 1.5, float("inf"), float("nan"), "1e-3"],
    "ae.seeds": [[], [1, 1], [-1], [2**70], 1],
    "latent_grid.range": [0, float("inf"), 1e6],
    "latent_grid.cells": [1, 1000],
    "pca.components": [1, 785],
    "pca.fit_images": [1, 60_001],
    "pca.seed": [-1, 2**64],
    "sweep.sizes": [[], [0, 2], [3, 2], [2, 2], [2, 785]],
    "sweep.seed": [-1, 2**64, "0"],
    "vae.hidden": [0, 10**6],
    "vae.latent": [1, 785],
    "vae.epochs": [0, 10**5],
    "vae.batch_size": [0, 60_001],
    "vae.lr": [0, float("inf"), 2.0],
    "vae.seed": [-5, 2**70],
    "prior_grid.range": [0, float("-inf")],
    "prior_grid.cells": [1, 1000],
    "classifier.epochs": [0, 10**5],
    "classifier.batch_size": [0, 60_001],
    "classifier.lr": [0, float("nan"), 3.0],
    "classifier.lr_decay": [0, 1.01, float("nan")],
    "classifier.seed": [-1, 2**64],
    "sample.count": [0, 5000],
    "sample.score_count": [1, 10**6],
    "sample.seeds": [[], [0, 0], [-1]],
    "fresh.seed_count": [-1, 1001, 2.5, True],
    "fresh.first_seed": [-1, 2**64 - 1000],
    "fresh.classifier_count": [-1, 101],
}


def leaf_keys(node, prefix=""):
    for name, value in node.items():
        if isinstance(value, dict):
            yield from leaf_keys(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


def test_every_key_of_params_yaml_has_bad_values_in_the_table():
    assert set(leaf_keys(DEFAULT)) == set(BAD_VALUES)


@pytest.mark.parametrize(("key", "value"), [(k, v) for k, values in BAD_VALUES.items() for v in values])
def test_every_bad_value_fails_naming_its_key(key, value):
    with pytest.raises(ParamsError) as err:
        params.parse(with_value(key, value))
    assert key in str(err.value)


@pytest.mark.parametrize("has_bf16", [True, False])
def test_bf16_on_a_cpu_needs_bf16_arithmetic(monkeypatch, has_bf16):
    monkeypatch.setattr(params, "cpu_has_bf16", lambda: has_bf16)
    text = with_value("device", "cpu").replace("precision: fp32", "precision: bf16")
    if has_bf16:
        assert params.parse(text).precision == "bf16"
    else:
        with pytest.raises(ParamsError, match=r"no bf16 arithmetic .* use precision: fp32"):
            params.parse(text)
    assert params.parse(with_value("device", "cpu")).precision == "fp32"  # fp32 needs nothing


def test_params_for_another_machine_are_checked_for_what_they_say_not_for_this_hardware(monkeypatch, tmp_path):
    """A campaign's point runs on a cluster's node: there CUDA or bf16 may be at hand though not here."""
    monkeypatch.setattr(params, "cpu_has_bf16", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    path = tmp_path / "params.yaml"
    for device, precision in (("cuda:3", "fp32"), ("cpu", "bf16")):
        path.write_text(with_value("device", device).replace("precision: fp32", f"precision: {precision}"))
        with pytest.raises(ParamsError, match=r"CUDA is not available here|no bf16 arithmetic"):
            params.load(path)
        p = params.load(path, this_machine=False)
        assert (p.device, p.precision) == (device, precision)
        with pytest.raises(ParamsError):  # and the next load is for this machine again
            params.load(path)
    path.write_text(with_value("device", "cuda:x"))
    with pytest.raises(ParamsError, match=re.escape("device must be auto | cpu | cuda | cuda:N, got 'cuda:x'")):
        params.load(path, this_machine=False)


def test_the_bf16_probe_reads_the_cpu_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    for flags, expected in (("fpu avx2 amx_bf16 amx_tile", True), ("fpu avx512f avx512_bf16", True), ("avx2", False)):
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        assert params.cpu_has_bf16(cpuinfo) is expected
    assert params.cpu_has_bf16(tmp_path / "absent") is False
