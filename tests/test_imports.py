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
# start-up cost it does not need (no stage imports kneed, scipy or torchvision at all).
ALLOWED = {
    "download": set(),
    "classifier": {"torch"},
    "explorer": {"torch"},
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


def test_training_and_inference_never_load_the_compiler():
    """torch.optim's optimisers import torch._dynamo when built and stepped (1.5 s a stage);
    the trainer's Adam must not, nor must set-up, inference or writing a checkpoint."""
    code = """
import sys, tempfile
from pathlib import Path
import torch
from stages.lib import io
from stages.lib.data import Split
from stages.lib.models import AEConfig, Autoencoder, config_dict
from stages.lib.runtime import predict, setup
from stages.lib.train import Recipe, ae_objective, fit
device = setup("cpu")
data = Split(torch.rand(64, 784), torch.zeros(64, dtype=torch.long))
model = Autoencoder(AEConfig(hidden=8, latent=2))
fit(model, ae_objective, data, data, Recipe(2, 16, 1e-3, 0, lr_decay=0.5), "tiny")
predict(model.encode, data.images)
with io.transaction() as out:
    out.save_checkpoint(Path(tempfile.mkdtemp()) / "m", model, config_dict(model.config))
print(sorted(m for m in ("torch._dynamo", "torch._inductor") if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == "[]"
