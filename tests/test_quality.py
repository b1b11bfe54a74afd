"""Each measure of stages/lib/quality.py on inputs whose value is known."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness.synthetic import digits
from stages.lib import quality


def images(n: int = 50) -> torch.Tensor:
    return torch.from_numpy(digits(n, 0)[0].reshape(n, -1)).double() / 255


def blur(x: torch.Tensor) -> torch.Tensor:
    kernel = torch.full((1, 1, 3, 3), 1 / 9, dtype=x.dtype)
    return F.conv2d(x.reshape(-1, 1, 28, 28), kernel, padding=1).reshape(len(x), -1)


def test_a_blurred_image_is_less_sharp_and_a_flat_one_has_no_gradient():
    x = images()
    assert quality.sharpness_ratio(blur(x), quality.gradient_energy(x)) < 0.7
    assert quality.sharpness_ratio(x, quality.gradient_energy(x)) == pytest.approx(1.0)
    assert quality.gradient_energy(torch.full((3, 784), 0.5)) == 0.0


def test_gradient_energy_of_a_known_pattern():
    stripes = torch.zeros(28, 28)
    stripes[:, ::2] = 1.0  # every step across changes by 1, no step down changes
    assert quality.gradient_energy(stripes.reshape(1, -1)) == pytest.approx(0.5)


def test_identical_neighbours_are_zero_apart_and_never_change_class():
    grid = images(1).repeat(16, 1)  # a 4 x 4 grid of one image
    assert quality.neighbour_distance(grid, 4) == 0.0
    assert quality.class_change_rate(torch.zeros(16, dtype=torch.long), 4) == 0.0


def test_neighbours_are_the_adjacent_cells_of_a_row_major_grid():
    cells = torch.arange(9)  # 0 1 2 / 3 4 5 / 6 7 8
    first, second = quality.grid_neighbours(cells, 3)
    pairs = set(zip(first.tolist(), second.tolist(), strict=True))
    assert pairs == {(0, 1), (1, 2), (3, 4), (4, 5), (6, 7), (7, 8), (0, 3), (1, 4), (2, 5), (3, 6), (4, 7), (5, 8)}
    assert quality.class_change_rate(torch.tensor([0, 0, 1, 0, 0, 1, 2, 2, 1]), 3) == pytest.approx(5 / 12)


def test_samples_of_the_prior_are_near_zero_from_it_and_a_shift_or_stretch_is_not():
    z = torch.randn(100_000, 2, generator=torch.Generator().manual_seed(0))
    assert quality.gaussian_kl_from_prior(z) < 1e-3
    # KL(N(m, s^2 I) || N(0, I)) = 0.5 * (d s^2 + |m|^2 - d - d log s^2)
    assert quality.gaussian_kl_from_prior(z + 1.0) == pytest.approx(1.0, rel=0.01)
    assert quality.gaussian_kl_from_prior(z * 3.0) == pytest.approx(0.5 * (18 - 2 - 2 * 2 * 1.0986), rel=0.01)


def test_class_share_gap_in_sampling_noise_units():
    same = [np.array([0] * 50 + [1] * 50)] * 3
    assert quality.class_share_gap(same) == {"max": 0.0, "max_z": 0.0}
    swapped = [np.array([0] * 60 + [1] * 40), np.array([0] * 40 + [1] * 60)]
    gap = quality.class_share_gap(swapped)  # shares 0.6 and 0.4; p = 0.5, noise sqrt(2 * 0.25 / 100)
    assert gap["max"] == pytest.approx(0.2)
    assert gap["max_z"] == pytest.approx(0.2 / (0.5 / 100) ** 0.5)
