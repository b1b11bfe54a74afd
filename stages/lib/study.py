"""Steps the stages share: score a 2-D model's latent space and its reconstructions.

The training stages import this module, so it holds no figure code: a change to a model's
figures or its decoded walk (figures.py) retrains nothing."""

from __future__ import annotations

from collections.abc import Callable

import torch

from stages.lib import metrics
from stages.lib.data import Split
from stages.lib.losses import mse_per_pixel
from stages.lib.runtime import predict

Codec = Callable[[torch.Tensor], torch.Tensor]


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
