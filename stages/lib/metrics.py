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
    k = min(KNN_K, len(train_codes))
    classes = int(max(train_labels.max(), test_labels.max())) + 1
    nearest_labels = train_labels.long()[nearest(train_codes, test_codes, k)]
    votes = torch.nn.functional.one_hot(nearest_labels, classes).sum(1)
    predicted = votes.argmax(1)  # the first of equal maxima: the smallest label
    return float((predicted == test_labels.long()).double().mean())


# Candidates per query kept by the float32 screen of :func:`nearest`, and queries per block.
SCREEN = 16
SCREEN_ROWS = 1024


def screen_error_bound(queries: torch.Tensor, reach: float) -> torch.Tensor:
    """Per query, an upper bound on |(|r|^2 - 2 q.r) in float32 + |q|^2 - |q - r|^2| for any
    point r with |r| <= reach: a few float32 roundings per term of size (|q| + reach)^2,
    times 2 for safety."""
    unit = 2.0**-24  # float32 unit roundoff
    return 2 * (queries.shape[1] + 4) * unit * (queries.double().norm(dim=1) + reach) ** 2


def nearest(train: torch.Tensor, test: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (len(test), k) of each test point's k nearest training points, by exact
    float64 distance.

    Exact distances to every training point cost 2.6 s for 10,000 x 60,000 2-D codes on two
    cores. So a float32 matrix product (|r|^2 - 2 q.r) screens each query's ``SCREEN``
    closest candidates, exact distances rank those, and a query is accepted only if no
    point left out can be as close as its k-th: that point's screened value is at least the
    largest kept one, less the product's rounding error (:func:`screen_error_bound`).
    Queries that fail the check are computed exactly against every point.
    """
    train, test = train.float(), test.float()
    n = len(train)
    m = min(SCREEN, n)
    exact = train.double()
    norms = (train * train).sum(1)
    reach = float(train.norm(dim=1).max())
    found = []
    for i in range(0, len(test), SCREEN_ROWS):
        query = test[i : i + SCREEN_ROWS]
        screened = torch.addmm(norms, query, train.T, alpha=-2)  # |q - r|^2 - |q|^2
        kept, candidates = screened.topk(m, largest=False)  # ascending
        q = query.double()
        distances = (q[:, None, :] - exact[candidates]).square().sum(-1)  # exact squares
        order = distances.topk(k, largest=False)
        indices = candidates.gather(1, order.indices)
        q_norms = q.square().sum(1)
        unsure = order.values[:, -1] >= kept[:, -1].double() + q_norms - screen_error_bound(q, reach)
        if m == n:
            unsure[:] = False  # every point is a candidate
        for row in torch.nonzero(unsure).flatten().tolist():
            full = _distances(q[row : row + 1], exact)[0]
            indices[row] = full.topk(k, largest=False).indices
        found.append(indices)
    return torch.cat(found)


def elbow(sizes: Sequence[int], errors: Sequence[float], sensitivity: float = 1.0) -> int | None:
    """The elbow of a decreasing, convex error curve by Kneedle (Satopaa et al., 2011).

    ``None`` when the curve has fewer than three points or no knee. The algorithm of
    ``kneed.KneeLocator(sizes, errors, curve="convex", direction="decreasing")`` (offline,
    no interpolation), which a test holds it equal to: kneed's import of scipy took 1.3 s
    of the sweep's start.
    """
    if len(sizes) < 3:
        return None
    x, y = np.asarray(sizes, dtype=float), np.asarray(errors, dtype=float)
    x_unit = (x - x.min()) / (x.max() - x.min())
    y_unit = (y - y.min()) / (y.max() - y.min())
    difference = (y_unit.max() - y_unit) - x_unit  # the curve turned concave increasing, less the diagonal
    # Local maxima, each point against its neighbours (an end point against itself). kneed
    # also pauses detection at local minima; that never changes the answer, since from a
    # minimum the curve can only rise to the next maximum, which sets a new threshold.
    left, right = np.r_[difference[:1], difference[:-1]], np.r_[difference[1:], difference[-1:]]
    maxima = np.flatnonzero((difference >= left) & (difference >= right))
    if not len(maxima):
        return None
    thresholds = dict(zip(maxima.tolist(), difference[maxima] - sensitivity * abs(np.diff(x_unit).mean()), strict=True))
    threshold, candidate = 0.0, int(maxima[0])
    for i in range(int(maxima[0]), len(difference) - 1):
        if i in thresholds:
            threshold, candidate = thresholds[i], i
        if difference[i + 1] < threshold:
            return int(x[candidate])
    return None


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
