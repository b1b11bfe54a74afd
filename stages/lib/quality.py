"""Measures for the study's judgements of images and latent spaces by eye.

Each takes tensors and returns plain numbers; each has a known value on inputs built for it
in tests/test_quality.py (a blurred image is less sharp, identical neighbours are 0 apart,
samples of N(0, I) are 0 from it).
"""

from __future__ import annotations

import numpy as np
import torch

SIDE = 28


def gradient_energy(images: torch.Tensor) -> float:
    """Mean squared difference between neighbouring pixels, across and down, of (n, 784)
    images: what blurring lowers and sharp strokes raise."""
    x = images.double().reshape(-1, SIDE, SIDE)
    across, down = x.diff(dim=2), x.diff(dim=1)
    return float((across.pow(2).mean() + down.pow(2).mean()) / 2)


def sharpness_ratio(images: torch.Tensor, reference_energy: float) -> float:
    """Gradient energy of ``images`` over a reference's (:func:`gradient_energy` of real
    images, computed once by the caller): below 1 is blurrier."""
    return gradient_energy(images) / reference_energy


def grid_neighbours(values: torch.Tensor, cells: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs of horizontally and vertically adjacent cells of a row-major cells x cells grid:
    (first, second), each of shape (2 * cells * (cells - 1), ...)."""
    grid = values.reshape(cells, cells, *values.shape[1:])
    first = torch.cat([grid[:, :-1].flatten(0, 1), grid[:-1, :].flatten(0, 1)])
    second = torch.cat([grid[:, 1:].flatten(0, 1), grid[1:, :].flatten(0, 1)])
    return first, second


def neighbour_distance(images: torch.Tensor, cells: int) -> float:
    """Mean absolute pixel difference between adjacent cells of a decoded grid: 0 when every
    step of the walk changes nothing, larger when it jumps."""
    first, second = grid_neighbours(images.double(), cells)
    return float((first - second).abs().mean())


def class_change_rate(predicted: torch.Tensor, cells: int) -> float:
    """Share of adjacent cell pairs whose predicted class differs."""
    first, second = grid_neighbours(predicted, cells)
    return float((first != second).double().mean())


def class_entropy(predicted: torch.Tensor, classes: int = 10) -> float:
    """Entropy in nats of the histogram of predicted classes: ln 10 = 2.303 when ten classes
    are equally common, 0 when one class fills everything; how evenly a set of images spreads
    over the classes, which still tells sets apart when each holds all ten."""
    shares = torch.bincount(predicted.long(), minlength=classes).double() / len(predicted)
    shares = shares[shares > 0]
    return float(0.0 - (shares * shares.log()).sum())  # 0.0 - x: never -0.0


def gaussian_kl_from_prior(codes: torch.Tensor) -> float:
    """KL(N(m, S) || N(0, I)) of the Gaussian fitted to the codes (mean m, covariance S):
    0 when the codes have the prior's first two moments, growing with any shift, stretch or
    correlation. ``0.5 * (tr S + m.m - d - log det S)``."""
    x = codes.double()
    mean = x.mean(0)
    cov = torch.atleast_2d(torch.cov(x.T))
    d = x.shape[1]
    return float(0.5 * (cov.trace() + mean @ mean - d - torch.logdet(cov)))


def class_share_gap(predicted: list[np.ndarray]) -> dict[str, float]:
    """Do the sets differ in which classes they hold beyond what sampling alone gives?

    ``max``: the largest difference between two sets in one class's share of images.
    ``max_z``: the largest such difference in units of its sampling noise,
    sqrt(2 p (1 - p) / n) for a class of overall share p in sets of n images.
    """
    shares = np.stack([np.bincount(labels, minlength=10) / len(labels) for labels in predicted])  # (sets, classes)
    gaps = shares.max(0) - shares.min(0)
    p = shares.mean(0)
    noise = np.sqrt(2 * p * (1 - p) / len(predicted[0]))
    z = np.divide(gaps, noise, out=np.zeros_like(gaps), where=noise > 0)
    return {"max": float(gaps.max()), "max_z": float(z.max())}
