"""The study's procedures as its code ran them."""

import math

import torch

from stages.lib import quality, study_code
from stages.lib.plots import latent_grid


def test_the_study_grid_draws_one_prior_sample_per_cell_whatever_the_cell():
    """Cell k of the loops (bottom row first) holds the k-th draw of the seed's stream, on a
    grid of any number of cells: no cell's coordinates enter its code."""
    generator = torch.Generator().manual_seed(5)
    stream = torch.cat([torch.randn(1, 2, generator=generator) for _ in range(16)])
    for cells in (3, 4):
        codes = study_code.prior_grid_codes(2, cells, seed=5).reshape(cells, cells, 2)
        visited = torch.stack([codes[cells - 1 - i, j] for i in range(cells) for j in range(cells)])
        assert torch.equal(visited, stream[: cells * cells])
    assert not torch.equal(study_code.prior_grid_codes(2, 4, seed=6), study_code.prior_grid_codes(2, 4, seed=5))


def decoder() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.Tanh(), torch.nn.Linear(64, 784), torch.nn.Sigmoid())


@torch.no_grad()
def test_shuffling_the_study_grid_changes_none_of_its_measures_but_a_walk_loses_its_smoothness():
    decode, cells = decoder(), 12
    drawn = decode(study_code.prior_grid_codes(2, cells, seed=0))
    walk = decode(torch.from_numpy(latent_grid(3.0, cells)))
    shuffle = torch.randperm(cells * cells, generator=torch.Generator().manual_seed(1))
    labels = drawn.argmax(1) % 10  # stand-in classes
    for images in (drawn, walk):
        shuffled = images[shuffle]
        # Equal up to the order of a float64 sum, which vectorised kernels choose per CPU.
        assert math.isclose(quality.gradient_energy(shuffled), quality.gradient_energy(images), rel_tol=1e-12)
        assert quality.class_entropy(labels[shuffle]) == quality.class_entropy(labels)
    ratio = quality.neighbour_distance(drawn[shuffle], cells) / quality.neighbour_distance(drawn, cells)
    assert math.isclose(ratio, 1, abs_tol=0.1)  # independent cells: neighbours are any two cells
    assert quality.neighbour_distance(walk[shuffle], cells) > 2 * quality.neighbour_distance(walk, cells)


def test_the_study_scatter_is_102_batches_of_shuffled_training_images():
    rows = study_code.scatter_rows(60_000, seed=0)
    assert len(rows) == 102 * 128 == len(set(rows.tolist()))
    assert rows.max() < 60_000 and not torch.equal(rows, torch.arange(len(rows)))


def test_class_entropy_is_ln_k_for_k_even_classes_and_zero_for_one():
    assert math.isclose(quality.class_entropy(torch.arange(100) % 10), math.log(10))
    assert math.isclose(quality.class_entropy(torch.arange(100) % 4), math.log(4))
    assert quality.class_entropy(torch.full((7,), 3)) == 0.0
