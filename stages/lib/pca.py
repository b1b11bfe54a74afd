"""PCA (scikit-learn) as an encoder/decoder pair in torch, in standard-deviation units."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import PCA


@dataclass(frozen=True)
class PCACodec:
    """The first ``k`` principal axes: ``encode`` whitens, ``decode`` is the study's formula.

    decode(z) = mean + (z * sqrt(explained_variance)) @ components
    """

    mean: torch.Tensor  # (d,)
    components: torch.Tensor  # (k, d), orthonormal rows
    scale: torch.Tensor  # (k,) sqrt of explained variance

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) @ self.components.T / self.scale

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.mean + (z * self.scale) @ self.components

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def truncate(self, k: int) -> PCACodec:
        """The codec of the first ``k`` axes: PCA axes are nested, so one fit serves all k."""
        return PCACodec(self.mean, self.components[:k], self.scale[:k])


def fit_pca(x: torch.Tensor, components: int) -> tuple[PCACodec, np.ndarray]:
    """Fit exact PCA on all of ``x`` (eigendecomposition of the 784x784 covariance in float64:
    deterministic, and seconds instead of a minute for a full SVD of the data).

    Returns the codec and the explained-variance ratio of *every* axis (for 90%/95% sizes).
    """
    data = x.cpu().numpy().astype(np.float64)
    pca = PCA(svd_solver="covariance_eigh").fit(data)
    k = components
    to = dict(device=x.device, dtype=torch.float32)
    codec = PCACodec(
        torch.tensor(pca.mean_, **to),
        torch.tensor(pca.components_[:k], **to),
        torch.tensor(np.sqrt(pca.explained_variance_[:k]), **to),
    )
    return codec, pca.explained_variance_ratio_
