"""Each stage imports only what it uses: start-up is paid per process, ten times per study."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = sorted(p.stem for p in (ROOT / "stages").glob("*.py") if p.stem != "__init__")
HEAVY = (
    "torch",
    "matplotlib",
    "sklearn",
    "scipy",
    "kneed",
    "pandas",
    "torchvision",
    "torch._dynamo",
    "torch._inductor",
)
# What a stage may have loaded once its module is imported; everything else in HEAVY is a
# start-up cost it does not need (kneed and torchvision are imported where they are called).
ALLOWED = {
    "download": set(),
    "classifier": {"torch"},
    **{
        name: {"torch", "matplotlib"} for name in ("train_ae", "pca", "sweep", "train_vae", "sample", "judge", "report")
    },
}


def loaded_after_import(stages: list[str]) -> dict[str, list[str]]:
    code = (
        "import importlib, json, sys; importlib.import_module(sys.argv[1]); "
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-c", code, f"stages.{name}"], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        for name in stages
    }
    return {name: json.loads(proc.communicate(timeout=120)[0]) for name, proc in procs.items()}


def test_every_stage_is_in_the_table():
    assert set(ALLOWED) == set(STAGES)


def test_importing_a_stage_loads_no_heavy_package_it_does_not_use():
    for name, loaded in loaded_after_import(STAGES).items():
        assert set(loaded) <= ALLOWED[name], f"stages.{name} imports {sorted(set(loaded) - ALLOWED[name])}"
