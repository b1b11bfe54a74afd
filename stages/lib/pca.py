"""PCA as an encoder/decoder pair in torch, in standard-deviation units, fit by scikit-learn."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


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
    """Exact PCA of all of ``x`` by scikit-learn, in float64; keep its first ``components`` axes.

    Returns the codec (float32, on ``x``'s device) and the explained-variance ratio of *every* axis
    (for the sizes that reach 90% and 95% of the variance).
    """
    from sklearn.decomposition import PCA  # only the stages that fit pay scikit-learn's import

    fitted = PCA(svd_solver="auto").fit(x.double().cpu().numpy())
    k = components

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(x.device)

    codec = PCACodec(
        mean=tensor(fitted.mean_),
        components=tensor(fitted.components_[:k]),
        scale=tensor(np.sqrt(fitted.explained_variance_[:k])),
    )
    return codec, fitted.explained_variance_ratio_
