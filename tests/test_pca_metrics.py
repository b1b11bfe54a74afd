import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.decomposition import PCA

from stages.lib import metrics
from stages.lib.pca import fit_pca
from tests.synthetic import digits

X = torch.from_numpy(digits(200, 0)[0].reshape(200, -1)).float() / 255


def test_all_components_reconstruct_exactly():
    codec, ratio = fit_pca(X, 199)
    torch.testing.assert_close(codec.reconstruct(X), X, atol=1e-3, rtol=0)
    assert ratio.sum() == pytest.approx(1.0)


def test_truncation_equals_a_fit_with_fewer_components():
    codec, _ = fit_pca(X, 20)
    small = PCA(n_components=5, svd_solver="full").fit(X.numpy().astype(np.float64))
    recon = small.inverse_transform(small.transform(X.numpy().astype(np.float64)))
    np.testing.assert_allclose(codec.truncate(5).reconstruct(X).numpy(), recon, atol=1e-4)


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


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_separation_equals_scikit_learn(seed):
    """The tensor code against scikit-learn's silhouette_score and 5-NN classifier: clusters
    that overlap, a label with a single sample, a label absent from the test set."""
    from sklearn.metrics import silhouette_score
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(seed)
    train_labels, test_labels = rng.integers(0, 9, 700), rng.integers(0, 8, 300)
    test_labels[0] = 9  # alone in its class
    centres = rng.normal(scale=2.0, size=(10, 2))
    train = (centres[train_labels] + rng.normal(size=(700, 2))).astype(np.float32)
    test = (centres[test_labels] + rng.normal(size=(300, 2))).astype(np.float32)
    ours = metrics.separation(*map(torch.from_numpy, (train, train_labels, test, test_labels)))
    reference = silhouette_score(test.astype(np.float64), test_labels)
    knn = KNeighborsClassifier(n_neighbors=5).fit(train.astype(np.float64), train_labels)
    assert ours["silhouette"] == pytest.approx(reference, rel=1e-6)
    assert ours["knn_accuracy"] == pytest.approx(knn.score(test.astype(np.float64), test_labels), rel=1e-6)
    np.testing.assert_allclose(ours["code_std"], test.std(0), rtol=1e-6)


@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_nearest_neighbours_are_exact_even_where_the_float32_screen_is_not(offset):
    """Near the origin the screen decides; at 10^4 float32 cannot tell points 0.05 apart, so
    every query must fall back to exact distances: both must find the true neighbours."""
    rng = np.random.default_rng(0)
    train = torch.from_numpy(offset + rng.normal(scale=0.3, size=(3000, 3))).float()
    test = torch.from_numpy(offset + rng.normal(scale=0.3, size=(200, 3))).float()
    exact = torch.cdist(test.double(), train.double(), compute_mode="donot_use_mm_for_euclid_dist")
    got = metrics.nearest(train, test, 5)
    assert torch.equal(exact.gather(1, got).sort(1).values, exact.topk(5, largest=False).values)


@pytest.mark.parametrize(("offset", "scale", "dims"), [(0.0, 1.0, 2), (30.0, 5.0, 2), (1e4, 0.3, 3), (0.0, 50.0, 20)])
def test_the_screen_error_bound_holds(offset, scale, dims):
    rng = np.random.default_rng(1)
    train = torch.from_numpy(offset + rng.normal(scale=scale, size=(2000, dims))).float()
    test = torch.from_numpy(offset + rng.normal(scale=scale, size=(100, dims))).float()
    screened = torch.addmm((train * train).sum(1), test, train.T, alpha=-2).double()
    exact = (test.double()[:, None] - train.double()[None]).square().sum(-1)
    error = (screened + test.double().square().sum(1, keepdim=True) - exact).abs().max(1).values
    bound = metrics.screen_error_bound(test, float(train.norm(dim=1).max()))
    assert (error <= bound).all() and (error > bound / 1000).any()  # a bound, and not a vacuous one


def test_a_knn_tie_goes_to_the_smallest_label():
    train = torch.tensor([[0.0], [1.0], [-1.0], [2.0], [-2.0]])
    labels = torch.tensor([7, 3, 3, 7, 5])  # nearest five to 0: 7, 3, 3, 7, 5
    assert metrics.knn_accuracy(train, labels, torch.zeros(1, 1), torch.tensor([3])) == 1.0


def test_pca_equals_scikit_learn():
    ours, ratio = fit_pca(X, 10)
    reference = PCA(svd_solver="covariance_eigh").fit(X.numpy().astype(np.float64))
    np.testing.assert_allclose(ours.components.numpy(), reference.components_[:10], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ours.scale.numpy() ** 2, reference.explained_variance_[:10], rtol=1e-6)
    np.testing.assert_allclose(ratio[:200], reference.explained_variance_ratio_, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(ours.mean.numpy(), reference.mean_, rtol=1e-6)


def test_elbow_of_a_known_curve():
    sizes = list(range(1, 11))
    errors = [1.0, 0.5, 0.25, 0.2, 0.18, 0.17, 0.16, 0.15, 0.14, 0.13]
    assert metrics.elbow(sizes, errors) == 3
    assert metrics.elbow([2, 3], [1.0, 0.5]) is None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(1, 60), min_size=3, max_size=25, unique=True).map(sorted),
    st.data(),
)
def test_elbow_is_kneeds_kneedle(sizes, data):
    """Against kneed's KneeLocator on convex decreasing curves, noisy ones, and arbitrary values."""
    import warnings

    from kneed import KneeLocator

    n = len(sizes)
    steps = data.draw(st.lists(st.floats(1e-6, 1.0), min_size=n, max_size=n))
    shape = data.draw(st.sampled_from(["convex", "noisy", "arbitrary"]))
    curve = np.cumsum(sorted(steps))[::-1]  # decreasing by ever smaller drops
    noise = np.asarray(data.draw(st.lists(st.floats(-1.0, 1.0), min_size=n, max_size=n)))
    # Noise of a few percent makes small local minima, where kneed pauses detection and
    # metrics.elbow does not: the answers must agree there too.
    errors = {"convex": list(curve), "noisy": list(curve + 0.03 * curve[0] * noise), "arbitrary": steps}[shape]
    if max(errors) == min(errors):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kneed warns when it finds no knee
        knee = KneeLocator(sizes, errors, curve="convex", direction="decreasing").knee
    assert metrics.elbow(sizes, errors) == (None if knee is None else int(knee))


def test_components_for_variance():
    assert metrics.components_for_variance([0.5, 0.3, 0.15, 0.05], 0.9) == 3
    assert metrics.components_for_variance([0.5, 0.3], 0.9) is None
    assert metrics.components_for_variance([0.5, 0.4, 0.1], 0.9) == 2


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
