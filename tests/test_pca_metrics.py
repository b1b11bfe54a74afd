import numpy as np
import pytest
import torch

from harness.synthetic import digits
from stages.lib import metrics
from stages.lib.pca import fit_pca

X = torch.from_numpy(digits(200, 0)[0].reshape(200, -1)).float() / 255


def test_all_components_reconstruct_exactly():
    codec, ratio = fit_pca(X, 199)
    torch.testing.assert_close(codec.reconstruct(X), X, atol=1e-3, rtol=0)
    assert ratio.sum() == pytest.approx(1.0)


def test_truncation_equals_a_fit_with_fewer_components():
    codec, _ = fit_pca(X, 20)
    small, _ = fit_pca(X, 5)
    torch.testing.assert_close(codec.truncate(5).reconstruct(X), small.reconstruct(X), atol=1e-5, rtol=0)


def test_codes_are_the_projection_on_orthonormal_axes_of_decreasing_variance():
    codec, ratio = fit_pca(X, 10)
    torch.testing.assert_close(codec.components @ codec.components.T, torch.eye(10), atol=1e-5, rtol=0)
    assert (np.diff(ratio) <= 1e-12).all() and (codec.scale[:-1] >= codec.scale[1:]).all()
    centred = (X - X.mean(0)) @ codec.components.T
    torch.testing.assert_close(codec.encode(X) * codec.scale, centred, atol=1e-4, rtol=0)
    # No other axis holds more variance than the first: a random unit direction holds less.
    direction = torch.nn.functional.normalize(torch.randn(784, generator=torch.Generator().manual_seed(0)), dim=0)
    assert float(((X - X.mean(0)) @ direction).var()) < float(codec.scale[0] ** 2)


def test_pca_decode_is_the_study_formula_and_deterministic():
    a, _ = fit_pca(X, 2)
    b, _ = fit_pca(X, 2)
    z = torch.tensor([[1.0, -2.0]])
    expected = a.mean + (z * a.scale) @ a.components
    torch.testing.assert_close(a.decode(z), expected)
    assert torch.equal(a.components, b.components) and torch.equal(a.encode(X), b.encode(X))


def test_whitened_codes_have_unit_spread():
    codec, _ = fit_pca(X, 2)
    std = codec.encode(X).std(0, correction=1)
    torch.testing.assert_close(std, torch.ones(2), atol=1e-3, rtol=0)


def test_separated_clusters_score_perfectly():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 20)
    centres = np.stack([np.arange(10) * 100.0, np.zeros(10)], 1)
    codes = torch.from_numpy(centres[labels] + rng.normal(scale=0.1, size=(200, 2)))
    labels = torch.from_numpy(labels)
    result = metrics.separation(codes, labels, codes, labels)
    assert result["silhouette"] > 0.99 and result["knn_accuracy"] == 1.0
    assert result["code_std"][1] == pytest.approx(0.1, rel=0.2)


def test_random_codes_score_near_chance():
    rng = np.random.default_rng(0)
    labels = torch.from_numpy(rng.integers(0, 10, 500))
    codes = torch.from_numpy(rng.normal(size=(500, 2)))
    result = metrics.separation(codes, labels, codes.flip(0), labels)
    assert abs(result["silhouette"]) < 0.1 and result["knn_accuracy"] < 0.25


def test_the_neighbour_vote_takes_five_neighbours():
    """Each test point's single nearest training point has the other label, its next four
    its own: a 5-NN vote gets all four right, a 1-NN vote none."""
    train = torch.tensor([[0.1], [0.2], [0.3], [0.4], [0.5], [9.9], [10.7], [10.8], [10.9], [11.0]])
    train_labels = torch.tensor([1, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    test, test_labels = torch.tensor([[0.0], [0.05], [9.8], [9.85]]), torch.tensor([0, 0, 1, 1])
    assert metrics.separation(train, train_labels, test, test_labels)["knn_accuracy"] == 1.0


def test_elbow_of_a_known_curve():
    sizes = list(range(1, 11))
    errors = [1.0, 0.5, 0.25, 0.2, 0.18, 0.17, 0.16, 0.15, 0.14, 0.13]
    assert metrics.elbow(sizes, errors) == 3
    assert metrics.elbow([2, 3], [1.0, 0.5]) is None


def test_components_for_variance():
    assert metrics.components_for_variance([0.5, 0.3, 0.15, 0.05], 0.9) == 3
    assert metrics.components_for_variance([0.5, 0.3], 0.9) is None
    assert metrics.components_for_variance([0.5, 0.4, 0.1], 0.9) == 2


def test_coefficient_of_variation_is_the_sample_spread_over_the_mean_magnitude():
    # std with n - 1 of (1, 3) is sqrt(2); the mean's sign does not matter; one run has no spread
    assert metrics.coefficient_of_variation([1.0, 3.0]) == pytest.approx(2**0.5 / 2)
    assert metrics.coefficient_of_variation([-1.0, -3.0]) == pytest.approx(2**0.5 / 2)
    assert metrics.coefficient_of_variation([2.0, 2.0, 2.0]) == 0.0
    assert metrics.coefficient_of_variation([5.0]) == 0.0


def test_frechet_distance_known_answers():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert metrics.frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    shift = np.array([3.0, 0.0, 4.0])
    assert metrics.frechet_distance(a, a + shift) == pytest.approx(25.0, rel=1e-6)
    # 1-D: (sigma_a - sigma_b)^2 for equal means.
    x = rng.normal(size=(20000, 1))
    x -= x.mean()  # equal means, so only the spread differs
    assert metrics.frechet_distance(x, 3 * x) == pytest.approx((np.std(x, ddof=1) * 2) ** 2, rel=1e-6)


def test_sample_quality_of_confident_even_and_of_collapsed_sets():
    feats = np.random.default_rng(0).normal(size=(100, 4))
    even = np.eye(10)[np.arange(100) % 10]
    good = metrics.sample_quality(even, feats, feats)
    assert good["confidence"] == 1.0 and good["class_entropy"] == pytest.approx(np.log(10))
    assert good["frechet"] == pytest.approx(0, abs=1e-9)
    collapsed = metrics.sample_quality(np.full((100, 10), 0.1) + np.eye(10)[0] * 0.05, feats, feats + 1)
    assert collapsed["class_entropy"] == 0.0 and collapsed["confidence"] == pytest.approx(0.15)
    assert collapsed["frechet"] == pytest.approx(4.0)


def test_sample_quality_of_known_predictions():
    """Confidence is the mean top-class probability (not its maximum); the class entropy is
    of the histogram of predicted classes."""
    probs = np.zeros((4, 10))
    probs[0, 3], probs[0, 4] = 0.9, 0.1
    probs[1, 3], probs[1, 5] = 0.5, 0.5
    probs[2, 7], probs[3, 7] = 1.0, 1.0  # predicted: 3, 3, 7, 7
    features = np.random.default_rng(0).normal(size=(4, 3))
    result = metrics.sample_quality(probs, features, features)
    assert result["confidence"] == pytest.approx((0.9 + 0.5 + 1.0 + 1.0) / 4)
    assert result["class_entropy"] == pytest.approx(np.log(2))
    assert result["frechet"] == pytest.approx(0.0, abs=1e-9)
