"""Each stage imports only the packages it uses."""

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
# What a stage may have loaded once its module is imported (scikit-learn brings scipy); a
# package outside its set is one it has no use for.
NUMERICS = {"torch", "matplotlib", "sklearn", "scipy", "kneed", "pandas"}
ALLOWED = {
    "download": set(),  # torchvision's mirror list is read when the files are fetched
    "classifier": {"torch"},
    "explorer": {"torch", "sklearn", "scipy"},
    **{name: NUMERICS for name in ("train_ae", "pca", "sweep", "train_vae", "sample", "judge", "robustness", "report")},
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
