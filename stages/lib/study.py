"""Steps the stages share: load the data, draw a 2-D model's figures, score its latent space."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from stages.lib import metrics, plots
from stages.lib.data import Split, load_split
from stages.lib.io import Outputs, load_checkpoint
from stages.lib.losses import mse_per_pixel
from stages.lib.models import build
from stages.lib.train import predict

DATA_DIR = Path("data/mnist")
Codec = Callable[[torch.Tensor], torch.Tensor]


def load_model(path: Path) -> torch.nn.Module:
    """Rebuild a model from its checkpoint directory, in eval mode."""
    config, state = load_checkpoint(path)
    model = build(config)
    model.load_state_dict(state)
    return model.eval()


def load_data(device: torch.device) -> tuple[Split, Split]:
    return load_split(DATA_DIR, "train", device), load_split(DATA_DIR, "test", device)


def grid_images(decode: Codec, latent: int, limit: float, size: int, device: torch.device) -> np.ndarray:
    """Decode a size x size walk over the first two latent axes (any further axes at 0)."""
    z = np.zeros((size * size, latent), dtype=np.float32)
    z[:, :2] = plots.latent_grid(limit, size)
    return predict(decode, torch.from_numpy(z).to(device)).float().cpu().numpy()


def reconstruction_mse(reconstruct: Codec, x: torch.Tensor) -> float:
    """MSE per pixel of ``reconstruct(x)`` against ``x``, in inference batches."""
    return mse_per_pixel(predict(reconstruct, x), x).item()


def codes(encode: Codec, split: Split) -> np.ndarray:
    return predict(encode, split.images).float().cpu().numpy()


def latent_outputs(
    out: Outputs,
    plot_dir: Path,
    title: str,
    encode: Codec,
    decode: Codec,
    latent: int,
    data: tuple[Split, Split],
    limit: float,
    size: int,
) -> dict[str, float | list[float]]:
    """Write ``latent.png`` and ``grid.png`` for a 2-D model; return its separation metrics."""
    train, test = data
    train_codes, test_codes = codes(encode, train), codes(encode, test)
    test_labels = test.labels.cpu().numpy()
    out.save_figure(
        plot_dir / "latent.png", plots.scatter_figure(test_codes, test_labels, f"{title}: test-set latent codes")
    )
    images = grid_images(decode, latent, limit, size, test.images.device)
    out.save_figure(
        plot_dir / "grid.png", plots.grid_figure(images, limit, size, f"{title}: decoded {size}x{size} grid")
    )
    return metrics.separation(train_codes, train.labels.cpu().numpy(), test_codes, test_labels)


def history_table(history: list[dict]) -> tuple[list[str], list[list]]:
    """Per-epoch records as CSV columns and rows (floats rounded for stable, small files)."""
    columns = list(history[0])
    rows = [[_fmt(record[c]) for c in columns] for record in history]
    return columns, rows


def _fmt(value: object) -> object:
    return float(f"{value:.6g}") if isinstance(value, float) else value
