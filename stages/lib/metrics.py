"""Numbers that turn the study's judgements by eye into tracked metrics."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # tensors come in from the callers that train; the report's stage needs no torch
    import torch

KNN_K = 5


def separation(
    train_codes: torch.Tensor, train_labels: torch.Tensor, test_codes: torch.Tensor, test_labels: torch.Tensor
) -> dict[str, float | list[float]]:
    """How well a latent space separates the classes, on the test set, by scikit-learn.

    ``silhouette``: mean silhouette of test codes grouped by class (-1..1, higher is better).
    ``knn_accuracy``: accuracy of a 5-nearest-neighbour classifier fit on training codes.
    ``code_std``: per-axis standard deviation of the test codes (how compact the space is).
    """
    # Here and in silhouette, not at the top: scikit-learn imports scipy (1.0-1.8 s), and of the
    # stages that import this module six score nothing (benchmarks/README.md: stage start-up).
    from sklearn.neighbors import KNeighborsClassifier

    train_x, test_x = _numpy(train_codes), _numpy(test_codes)
    knn = KNeighborsClassifier(n_neighbors=min(KNN_K, len(train_x))).fit(train_x, train_labels.cpu().numpy())
    return {
        "silhouette": silhouette(test_codes, test_labels),
        "knn_accuracy": float(knn.score(test_x, test_labels.cpu().numpy())),
        "code_std": [float(s) for s in test_x.std(0)],
    }


def silhouette(codes: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean silhouette of the codes grouped by label, in float64."""
    from sklearn.metrics import silhouette_score

    return float(silhouette_score(_numpy(codes), labels.cpu().numpy()))


def _numpy(codes: torch.Tensor) -> np.ndarray:
    return codes.double().cpu().numpy()


def elbow(sizes: Sequence[int], errors: Sequence[float]) -> int | None:
    """The elbow of a decreasing, convex error curve by Kneedle (Satopaa et al., 2011), as
    ``kneed`` finds it; ``None`` when the curve has fewer than three points or no knee."""
    if len(sizes) < 3:
        return None
    # Here, not at the top: kneed imports scipy.signal, and of the stages that import this
    # module only the sweep and the report find an elbow (benchmarks/README.md: stage start-up).
    from kneed import KneeLocator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # kneed warns when a curve has no knee
        knee = KneeLocator(list(sizes), list(errors), curve="convex", direction="decreasing").knee
    return None if knee is None else int(knee)


def components_for_variance(explained_ratio: Sequence[float], target: float) -> int | None:
    """Smallest number of principal components whose explained variance reaches ``target``."""
    cumulative = np.cumsum(explained_ratio)
    hits = np.flatnonzero(cumulative >= target - 1e-12)
    return int(hits[0]) + 1 if len(hits) else None


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fit to two feature sets (the FID formula,
    Heusel et al. 2017): ``|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))``.

    ``Tr((S_a S_b)^(1/2))`` is the sum of square roots of the eigenvalues of ``S_a S_b``,
    which are real and non-negative for covariance matrices (up to rounding).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu = a.mean(0) - b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    eig = np.linalg.eigvals(cov_a @ cov_b).real.clip(min=0)
    return float(mu @ mu + np.trace(cov_a) + np.trace(cov_b) - 2 * np.sqrt(eig).sum())


SAMPLE_QUALITY = ("confidence", "class_entropy", "frechet")


def sample_quality(probs: np.ndarray, features: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """How the image classifier judges a set of generated images.

    ``confidence``: mean top-class probability (are they recognisable?).
    ``class_entropy``: entropy in nats of the histogram of predicted classes (are all ten
    produced? ln 10 = 2.303 is perfectly even, 0 is one class only).
    ``frechet``: Frechet distance of classifier features to those of real test images.
    """
    counts = np.bincount(probs.argmax(1), minlength=10) / len(probs)
    nonzero = counts[counts > 0]
    return {
        "confidence": float(probs.max(1).mean()),
        "class_entropy": float(0.0 - (nonzero * np.log(nonzero)).sum()),  # 0.0 - x: never -0.0
        "frechet": frechet_distance(features, reference),
    }


def mean_std(values: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0}


def coefficient_of_variation(values: Sequence[float]) -> float:
    """Sample standard deviation over the mean's magnitude: the spread of a measure over runs."""
    stats = mean_std(values)
    return stats["std"] / abs(stats["mean"]) if len(values) > 1 else 0.0
