"""Numbers that turn the study's judgements by eye into tracked metrics."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

KNN_K = 5
# Rows of a distance matrix computed at once: 256 x 60000 float64 is 123 MB.
DISTANCE_ROWS = 256


def separation(
    train_codes: torch.Tensor, train_labels: torch.Tensor, test_codes: torch.Tensor, test_labels: torch.Tensor
) -> dict[str, float | list[float]]:
    """How well a latent space separates the classes, on the test set.

    ``silhouette``: mean silhouette of test codes grouped by class (-1..1, higher is better).
    ``knn_accuracy``: accuracy of a 5-nearest-neighbour classifier fit on training codes.
    ``code_std``: per-axis standard deviation of the test codes (how compact the space is).

    Computed as tensor code on the codes' device, in float64 with exact (not matrix-product)
    distances: the same numbers as scikit-learn's ``silhouette_score`` and
    ``KNeighborsClassifier`` (a test holds them to 1e-6), without their start-up.
    """
    return {
        "silhouette": silhouette(test_codes, test_labels),
        "knn_accuracy": knn_accuracy(train_codes, train_labels, test_codes, test_labels),
        "code_std": [float(s) for s in test_codes.double().std(0, correction=0)],
    }


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def silhouette(codes: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over samples of (b - a) / max(a, b): a is the mean distance to the sample's own
    class, b to the nearest other class; 0 for a sample alone in its class."""
    x = codes.double()
    onehot = torch.nn.functional.one_hot(labels.long()).double()  # (n, classes)
    sums = torch.cat([_distances(x[i : i + DISTANCE_ROWS], x) @ onehot for i in range(0, len(x), DISTANCE_ROWS)])
    counts = onehot.sum(0)
    own = labels.long()[:, None]
    alone = counts[own[:, 0]] == 1
    a = sums.gather(1, own)[:, 0] / (counts[own[:, 0]] - 1).clamp(min=1)
    other = (sums / counts).scatter(1, own, torch.inf)
    other[:, counts == 0] = torch.inf  # a label with no sample is no cluster
    b = other.min(1).values
    s = ((b - a) / torch.maximum(a, b)).nan_to_num(0.0)  # 0 / 0 when every distance is 0
    return float(s.masked_fill(alone, 0.0).mean())


def knn_accuracy(
    train_codes: torch.Tensor, train_labels: torch.Tensor, test_codes: torch.Tensor, test_labels: torch.Tensor
) -> float:
    """Accuracy of a k-nearest-neighbour vote (k = 5, uniform weights; a tie goes to the
    smallest label, as in scikit-learn)."""
    train, test = train_codes.double(), test_codes.double()
    k = min(KNN_K, len(train))
    classes = int(max(train_labels.max(), test_labels.max())) + 1
    predicted = []
    for i in range(0, len(test), DISTANCE_ROWS):
        nearest = _distances(test[i : i + DISTANCE_ROWS], train).topk(k, largest=False).indices
        votes = torch.nn.functional.one_hot(train_labels.long()[nearest], classes).sum(1)
        predicted.append(votes.argmax(1))  # the first of equal maxima: the smallest label
    return float((torch.cat(predicted) == test_labels.long()).double().mean())


def elbow(sizes: Sequence[int], errors: Sequence[float]) -> int | None:
    """The elbow of a decreasing, convex error curve by Kneedle (Satopaa et al., 2011).

    ``None`` when the curve has fewer than three points or no knee.
    """
    if len(sizes) < 3:
        return None
    from kneed import KneeLocator

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
