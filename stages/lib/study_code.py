"""The study's code as it ran, where it did something other than its text says.

Each function here reproduces one procedure of the study's code fragments (in its report), so
that the report can price the difference the way it prices the study's 128-image PCA fit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where a grid or an order is drawn: the report reads the constants alone
    import torch

BATCH = 128  # the study's DataLoader batch size
GRID_KEY = "vae_as_study_drew_it"  # the VAE grid as the study's code drew it, in metrics/judge.json
# plot_pca_latent(num_batches=100) breaks once `i > num_batches`: batches 0..101 are drawn.
SCATTER_BATCHES = 102


def prior_grid_codes(latent: int, cells: int, seed: int) -> torch.Tensor:
    """The codes behind the study's VAE "grid" (plot_vae_reconstructed), row-major from the top-left.

    Its loops visit every cell of the cells x cells grid but draw ``z = torch.randn(1,
    latent_dim)`` in each: the cell's coordinates are never used. So every cell is an
    independent sample of the prior, drawn in the loops' order (bottom row first, as the study
    placed row ``i`` at ``n - 1 - i``), from a generator seeded by ``seed``.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    codes = torch.empty(cells, cells, latent)
    for i in range(cells):
        for j in range(cells):
            codes[cells - 1 - i, j] = torch.randn(1, latent, generator=generator)[0]
    return codes.reshape(cells * cells, latent)


def scatter_rows(n: int, seed: int) -> torch.Tensor:
    """The training images the study's PCA scatter showed: the first 102 batches of 128 of a
    shuffled pass over the training set (its loader had ``shuffle=True``)."""
    import torch

    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[: SCATTER_BATCHES * BATCH]
