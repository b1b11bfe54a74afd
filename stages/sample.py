"""Generate sets of images from the VAE by decoding z ~ N(0, I), one set per seed.

Reads:  params.yaml (sample), models/vae/.
Writes: plots/samples/seed_<s>.png for each seed in sample.seeds.
"""

from pathlib import Path

import torch

from stages.lib import cli, io, params
from stages.lib.models import build
from stages.lib.plots import samples_figure
from stages.lib.train import setup


def main() -> None:
    p = params.load()
    setup("cpu")  # a few dozen decodes: not worth a device transfer
    config, state = io.load_checkpoint(Path("models/vae"))
    model = build(config)
    model.load_state_dict(state)
    model.eval()
    with io.transaction() as out, torch.no_grad():
        folder = out.directory(Path("plots/samples"))
        for seed in p.sample.seeds:
            z = torch.randn(p.sample.count, config["latent"], generator=torch.Generator().manual_seed(seed))
            images = model.decode(z).numpy()
            fig = samples_figure(images, f"VAE samples, z ~ N(0, I), seed {seed}")
            (folder / f"seed_{seed}.png").write_bytes(io.png_bytes(fig))


if __name__ == "__main__":
    cli.run(main)
