"""Load ``params.yaml`` into frozen dataclasses, failing before any work on a bad value.

Every error names the key (``ae.epochs``), what was expected and what was found, so a
typo in ``dvc exp run -S`` is caught by the first stage that starts.

With ``$STAGES_PARAMS_READ`` set to a folder, a process notes every leaf key it reads
(``ae.epochs``; a whole block read field by field counts as its leaves) and writes them at exit
to ``<folder>/<stage>.json``, the stage named by DVC's ``$DVC_STAGE``: tests/test_stage_params.py
compares that with the keys each stage lists in dvc.yaml.
"""

from __future__ import annotations

import atexit
import contextvars
import dataclasses
import json
import os
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stages.lib.cli import StageError
from stages.lib.data import DATASETS

PARAMS_FILE = Path("params.yaml")
# Off while params are checked for another machine (a campaign's point runs on a cluster's node):
# whether CUDA or bf16 arithmetic is at hand is then that node's question, not this one's.
_THIS_MACHINE = contextvars.ContextVar("this_machine", default=True)


class ParamsError(StageError, ValueError):
    """A value in params.yaml is missing, unknown, of the wrong type or out of range."""


# Ranges are what the code can do, so that a bad value fails here and not hours later. Every
# number has finite bounds, which NaN and infinities fail too.
INPUT_DIM = 784  # 28x28 pixels: no code or PCA axis can exceed it
TRAIN_SIZE = 60_000  # a batch larger than the training set is one batch
SEED_MAX = 2**64 - 1  # torch.manual_seed's range


RECORD_ENV = "STAGES_PARAMS_READ"
_reads: set[str] | None = None  # the leaf keys read so far, while recording


class _Keyed:
    """Base of the params dataclasses: while recording, each read of a leaf notes its key.

    ``_key`` is the instance's key prefix (``"ae."``; ``""`` at the top), set by the loader
    once the instance is built, so that validation in ``__post_init__`` counts as no read;
    an instance not built from a file (None) notes nothing."""

    _key: str | None = None

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        if _reads is not None and name in type(self).__dataclass_fields__ and not isinstance(value, _Keyed):
            prefix = object.__getattribute__(self, "_key")
            if prefix is not None:
                _reads.add(prefix + name)
        return value


def _record_reads(folder: Path) -> None:
    global _reads
    if _reads is not None:
        return
    _reads = set()
    stage = os.environ.get("DVC_STAGE") or Path(sys.argv[0]).stem
    atexit.register(_write_reads, folder / f"{stage}.json")


def _write_reads(path: Path) -> None:
    seen = set(json.loads(path.read_text())) if path.is_file() else set()  # a stage run twice: both runs
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(sorted(seen | (_reads or set())), indent=1) + "\n")


def _between(low: float, high: float) -> Any:
    return field(metadata={"min": low, "max": high})


def _seed() -> Any:
    return field(metadata={"min": 0, "max": SEED_MAX})


def _seeds() -> Any:
    return field(metadata={"nonempty": True, "unique": True, "min": 0, "max": SEED_MAX})


def _lr() -> Any:
    return field(metadata={"gt": 0.0, "max": 1.0})


HIDDEN = (1, 8192)
LATENT_2D = (2, INPUT_DIM)  # the latent scatter and decoded grid need two axes
EPOCHS = (1, 10_000)
BATCH = (1, TRAIN_SIZE)
GRID_CELLS = (2, 64)  # cells per side of a decoded grid: 64x64 = 4096 decodes
GRID_RANGE = (1e-3, 1e3)


@dataclass(frozen=True)
class AEParams(_Keyed):
    hidden: int = _between(*HIDDEN)
    latent: int = _between(*LATENT_2D)
    epochs: int = _between(*EPOCHS)
    batch_size: int = _between(*BATCH)
    lr: float = _lr()
    seeds: tuple[int, ...] = _seeds()


@dataclass(frozen=True)
class GridParams(_Keyed):
    """A figure's decoded grid: ``cells`` x ``cells`` cells over -range..range on both axes."""

    range: float = _between(*GRID_RANGE)
    cells: int = _between(*GRID_CELLS)


@dataclass(frozen=True)
class PCAParams(_Keyed):
    components: int = _between(*LATENT_2D)
    fit_images: int = _between(2, TRAIN_SIZE)  # training images the fit sees, drawn by `seed`
    seed: int = _seed()


@dataclass(frozen=True)
class SweepParams(_Keyed):
    sizes: tuple[int, ...] = field(
        metadata={"nonempty": True, "sorted": True, "unique": True, "min": 1, "max": INPUT_DIM}
    )
    seed: int = _seed()


@dataclass(frozen=True)
class VAEParams(_Keyed):
    hidden: int = _between(*HIDDEN)
    latent: int = _between(*LATENT_2D)
    epochs: int = _between(*EPOCHS)
    batch_size: int = _between(*BATCH)
    lr: float = _lr()
    seed: int = _seed()


@dataclass(frozen=True)
class ClassifierParams(_Keyed):
    epochs: int = _between(*EPOCHS)
    batch_size: int = _between(*BATCH)
    lr: float = _lr()
    lr_decay: float = field(metadata={"gt": 0.0, "max": 1.0})
    seed: int = _seed()


@dataclass(frozen=True)
class SampleParams(_Keyed):
    count: int = _between(1, 1024)  # images drawn per figure
    score_count: int = _between(2, 100_000)
    seeds: tuple[int, ...] = _seeds()

    def __post_init__(self) -> None:
        if self.count > self.score_count:
            raise ParamsError(
                f"sample.count ({self.count}) must be <= sample.score_count ({self.score_count}): "
                "the figure shows the first images of the scored set"
            )


@dataclass(frozen=True)
class FreshParams(_Keyed):
    """Fresh seeds for the seed-dependent claims: ``seed_count`` more autoencoders and VAEs
    (the study's recipes), member k re-drawing its initialisation, batch order, VAE noise and
    sample sets from seed ``first_seed + k``; and ``classifier_count`` more classifiers scoring
    the study's own samples, the instrument's own spread."""

    seed_count: int = _between(0, 1000)  # 0: no fresh seeds; the pool is the study's own models
    first_seed: int = _between(0, SEED_MAX - 1000)
    classifier_count: int = _between(0, 100)

    @property
    def seed_list(self) -> tuple[int, ...]:
        return tuple(range(self.first_seed, self.first_seed + self.seed_count))

    @property
    def classifier_seed_list(self) -> tuple[int, ...]:
        return tuple(range(self.first_seed, self.first_seed + self.classifier_count))


@dataclass(frozen=True)
class Params(_Keyed):
    dataset: str = field(metadata={"choices": tuple(DATASETS)})
    device: str = field(metadata={"check": "device"})
    precision: str = field(metadata={"choices": ("fp32", "bf16")})
    ae: AEParams
    latent_grid: GridParams  # the AE's and PCA's decoded grid (a figure)
    pca: PCAParams
    sweep: SweepParams
    vae: VAEParams
    prior_grid: GridParams  # the VAE's decoded grid over its N(0, I) prior (a figure)
    classifier: ClassifierParams
    sample: SampleParams
    fresh: FreshParams

    def __post_init__(self) -> None:
        if not _THIS_MACHINE.get():
            return
        if self.precision == "bf16" and _runs_on_cpu(self.device) and not cpu_has_bf16():
            raise ParamsError(
                "precision is 'bf16' but this CPU has no bf16 arithmetic (neither AMX nor AVX512-BF16): "
                "autocast would emulate it, many times slower than fp32; use precision: fp32"
            )


def _runs_on_cpu(device: str) -> bool:
    if device == "auto":
        import torch

        return not torch.cuda.is_available()
    return device == "cpu"


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU does bf16 arithmetic in hardware (x86: AMX or AVX512-BF16 on Linux)."""
    try:
        with cpuinfo.open() as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:  # not Linux: no way to tell here, so no claim of speed either
        return False
    return bool({"amx_bf16", "avx512_bf16"} & set(flags))


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0]).split()[-1]}s"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string"}[tp]


def _check_scalar(value: Any, tp: type, key: str) -> Any:
    # bool is an int subclass in Python; `epochs: true` is a typo, not 1.
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ParamsError(f"{key} must be {_type_name(tp)}, got {value!r}")
    if tp is float and isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, tp):
        raise ParamsError(f"{key} must be {_type_name(tp)}, got {value!r}")
    return value


def _check_range(value: Any, meta: dict[str, Any], key: str) -> None:
    if "min" in meta and "max" in meta and not meta["min"] <= value <= meta["max"]:
        raise ParamsError(f"{key} must be between {_show(meta['min'])} and {_show(meta['max'])}, got {value!r}")
    if "min" in meta and value < meta["min"]:
        raise ParamsError(f"{key} must be >= {meta['min']}, got {value!r}")
    if "max" in meta and value > meta["max"]:
        raise ParamsError(f"{key} must be <= {meta['max']}, got {value!r}")
    if "gt" in meta and not value > meta["gt"]:
        raise ParamsError(f"{key} must be > {meta['gt']:g}, got {value!r}")
    if "choices" in meta and value not in meta["choices"]:
        allowed = " | ".join(meta["choices"])
        raise ParamsError(f"{key} must be one of {allowed}, got {value!r}")
    if meta.get("check") == "device":
        _check_device(value, key)


def _show(bound: float) -> str:
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


def _check_device(value: str, key: str) -> None:
    if value in ("auto", "cpu"):
        return
    import torch  # only to count CUDA devices: `download` and the default device need none

    if value == "cuda" or (value.startswith("cuda:") and value[5:].isdigit()):
        if not _THIS_MACHINE.get():
            return
        index = int(value[5:]) if ":" in value else 0
        if not torch.cuda.is_available():
            raise ParamsError(f"{key} is {value!r} but CUDA is not available here; use auto or cpu")
        if index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise ParamsError(f"{key} is {value!r} but this machine has {count} CUDA device(s)")
        return
    raise ParamsError(f"{key} must be auto | cpu | cuda | cuda:N, got {value!r}")


def _build(cls: type, raw: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "params.yaml"
    if not isinstance(raw, dict):
        raise ParamsError(f"{where} must be a mapping, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ParamsError(f"unknown key {prefix}{unknown[0]}; allowed keys in {where}: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, f in fields.items():
        key = f"{prefix}{name}"
        if name not in raw:
            raise ParamsError(f"missing key {key}")
        values[name] = _convert(raw[name], hints[name], dict(f.metadata), key)
    built = cls(**values)
    object.__setattr__(built, "_key", prefix)  # from here on, reads are noted (when recording)
    return built


def _convert(value: Any, tp: Any, meta: dict[str, Any], key: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, f"{key}.")
    if typing.get_origin(tp) is tuple:
        if not isinstance(value, list):
            raise ParamsError(f"{key} must be {_type_name(tp)}, got {value!r}")
        item_tp = typing.get_args(tp)[0]
        items = [_check_scalar(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
        for i, v in enumerate(items):
            _check_range(v, meta, f"{key}[{i}]")
        if meta.get("nonempty") and not items:
            raise ParamsError(f"{key} must not be empty")
        if meta.get("unique") and len(set(items)) != len(items):
            dupes = sorted({v for v in items if items.count(v) > 1})
            raise ParamsError(f"{key} must not repeat values, got duplicates {dupes}")
        if meta.get("sorted") and items != sorted(items):
            raise ParamsError(f"{key} must be sorted ascending, got {items}")
        return tuple(items)
    value = _check_scalar(value, tp, key)
    _check_range(value, meta, key)
    return value


def parse(text: str, source: str = str(PARAMS_FILE)) -> Params:
    """Parse and validate the YAML text of a params file."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ParamsError(f"{source} is not valid YAML: {err}") from None
    return _build(Params, raw, "")


def load(path: Path = PARAMS_FILE, *, this_machine: bool = True) -> Params:
    """Read and validate ``params.yaml`` (or another path). With ``this_machine=False``, a
    device or precision is checked for what it says, not for this machine's hardware."""
    if not path.is_file():
        raise ParamsError(f"{path} not found; run stages from the project root")
    if os.environ.get(RECORD_ENV):
        _record_reads(Path(os.environ[RECORD_ENV]))
    token = _THIS_MACHINE.set(this_machine)
    try:
        return parse(path.read_text(encoding="utf-8"), str(path))
    finally:
        _THIS_MACHINE.reset(token)
