"""The figure stages alone (ae_figures, pca_figures, vae_figures) at the study's size: wall time
of each as DVC runs it (`python -m stages.<name>`), on the real test set and models of the
study's shapes.

Figures take the same time whatever the weights, so the models are freshly initialised (the
PCA fitted on 1000 images): no training is needed, and none is timed. Runs in a scratch copy
of stages/ with this checkout's params.yaml; prints one JSON line per stage, best of --repeat.

    MNIST_MIRROR=../shared/mnist python -m benchmarks.figures [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def make_models(where: Path) -> None:
    """Fresh models of the shapes params.yaml gives, saved as the training stages save them."""
    os.chdir(where)
    from stages.lib import io, params
    from stages.lib.data import load_data
    from stages.lib.models import VAE, AEConfig, Autoencoder, VAEConfig, config_dict
    from stages.lib.pca import fit_pca

    p = params.load()
    train, _ = load_data("cpu")
    codec, _ = fit_pca(train.images[:1000], p.pca.components)
    with io.transaction() as out:
        for seed in p.ae.seeds:
            model = Autoencoder(AEConfig(hidden=p.ae.hidden, latent=p.ae.latent))
            out.save_checkpoint(Path(f"models/ae/seed_{seed}"), model, config_dict(model.config))
        model = VAE(VAEConfig(hidden=p.vae.hidden, latent=p.vae.latent))
        out.save_checkpoint(Path("models/vae"), model, config_dict(model.config))
        folder = out.directory(Path("models/pca"))
        (folder / "config.json").write_bytes(io.json_bytes({"kind": "PCACodec", "components": p.pca.components}))
        from safetensors.torch import save

        (folder / "model.safetensors").write_bytes(save(asdict(codec)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat
    with tempfile.TemporaryDirectory() as scratch:
        where = Path(scratch)
        shutil.copytree(ROOT / "stages", where / "stages", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(ROOT / "params.yaml", where / "params.yaml")
        env = {**os.environ, "PYTHONPATH": str(where)}
        subprocess.run([sys.executable, "-m", "stages.download"], cwd=where, env=env, check=True)
        code = f"from benchmarks.figures import make_models; make_models({str(where)!r})"
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
        seed = yaml.safe_load((where / "params.yaml").read_text())["ae"]["seeds"][0]
        for stage, args in (("ae_figures", ["--seed", str(seed)]), ("pca_figures", []), ("vae_figures", [])):
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", f"stages.{stage}", *args], cwd=where, env=env, check=True)
                times.append(time.perf_counter() - start)
            print(json.dumps({"stage": stage, "best_s": round(min(times), 2), "runs_s": [round(t, 2) for t in times]}))


if __name__ == "__main__":
    main()
