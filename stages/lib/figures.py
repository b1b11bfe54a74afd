"""A 2-D model's figures, and the decoded walk over its latent plane that the figures, the judge
and the robustness layer share.

Apart from study.py, which the training stages import: a change here redraws the figures and
measures the walks again (judging.py imports it: sample, judge and robustness rerun), and
retrains nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from stages.lib import plots, study
from stages.lib.data import DATA_DIR, DATASETS, load_split
from stages.lib.io import Outputs
from stages.lib.runtime import predict


def walk(decode: study.Codec, *, latent: int, limit: float, cells: int) -> torch.Tensor:
    """A CPU model's decoded cells x cells walk over -limit..limit of its first two latent axes
    (any further axes at 0): (cells * cells, 784) images, row-major from the top-left."""
    z = np.zeros((cells * cells, latent), dtype=np.float32)
    z[:, :2] = plots.latent_grid(limit, cells)
    return predict(decode, torch.from_numpy(z)).float()


def latent_figures(
    out: Outputs,
    *,
    plot_dir: Path,
    title: str,
    encode: study.Codec,
    decode: study.Codec,
    latent: int,
    dataset: str,
    limit: float,
    cells: int,
) -> None:
    """Write ``latent.png`` (the test codes) and ``grid.png`` (a decoded walk) for a 2-D model on
    the CPU."""
    test = load_split(DATA_DIR, "test")
    codes = study.codes(encode, test).numpy()
    scatter = plots.scatter_figure(
        codes, test.labels.numpy(), DATASETS[dataset].classes, f"{title}: test-set latent codes"
    )
    out.save_figure(plot_dir / "latent.png", scatter)
    images = walk(decode, latent=latent, limit=limit, cells=cells).numpy()
    out.save_figure(
        plot_dir / "grid.png", plots.grid_figure(images, limit, cells, f"{title}: decoded {cells}x{cells} grid")
    )
