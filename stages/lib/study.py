"""Steps the stages share: score a 2-D model's latent space and reconstructions, draw its figures."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from stages.lib import metrics, plots
from stages.lib.data import Split
from stages.lib.io import Outputs
from stages.lib.losses import mse_per_pixel
from stages.lib.runtime import predict

Codec = Callable[[torch.Tensor], torch.Tensor]


def grid_images(decode: Codec, latent: int, limit: float, size: int, device: torch.device) -> np.ndarray:
    """Decode a size x size walk over the first two latent axes (any further axes at 0)."""
    z = np.zeros((size * size, latent), dtype=np.float32)
    z[:, :2] = plots.latent_grid(limit, size)
    return predict(decode, torch.from_numpy(z).to(device)).float().cpu().numpy()


def reconstruction_mse(reconstruct: Codec, x: torch.Tensor) -> float:
    """MSE per pixel of ``reconstruct(x)`` against ``x``, in inference batches."""
    return mse_per_pixel(predict(reconstruct, x), x).item()


def codes(encode: Codec, split: Split) -> torch.Tensor:
    """The float32 latent codes of a split, on its device."""
    return predict(encode, split.images).float()


def separation(encode: Codec, data: tuple[Split, Split]) -> dict[str, float | list[float]]:
    """A 2-D model's separation metrics (silhouette, 5-NN accuracy, code spread) on its codes."""
    train, test = data
    return metrics.separation(codes(encode, train), train.labels, codes(encode, test), test.labels)


def latent_figures(
    out: Outputs,
    *,
    plot_dir: Path,
    title: str,
    encode: Codec,
    decode: Codec,
    latent: int,
    test: Split,
    classes: Sequence[str],
    limit: float,
    size: int,
) -> None:
    """Write ``latent.png`` (the test codes) and ``grid.png`` (a decoded walk) for a 2-D model."""
    scatter = plots.scatter_figure(
        codes(encode, test).cpu().numpy(), test.labels.cpu().numpy(), classes, f"{title}: test-set latent codes"
    )
    out.save_figure(plot_dir / "latent.png", scatter)
    images = grid_images(decode, latent, limit, size, test.images.device)
    out.save_figure(
        plot_dir / "grid.png", plots.grid_figure(images, limit, size, f"{title}: decoded {size}x{size} grid")
    )
