import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from stages.lib import io
from stages.lib.losses import bernoulli_nll, gaussian_kl, mse_per_pixel, vae_loss
from stages.lib.models import (
    VAE,
    AEConfig,
    Autoencoder,
    BatchedAutoencoder,
    BatchedVAE,
    ClassifierConfig,
    ImageClassifier,
    VAEConfig,
    build,
    config_dict,
)


def test_autoencoder_shapes_and_layers():
    model = Autoencoder(AEConfig(hidden=512, latent=2))
    x = torch.rand(5, 784)
    assert model.encode(x).shape == (5, 2)
    out = model(x)
    assert out.shape == (5, 784) and out.min() >= 0 and out.max() <= 1
    sizes = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert sizes == [(784, 512), (512, 2), (2, 512), (512, 784)]


def test_vae_shapes_and_named_layers():
    model = VAE(VAEConfig(hidden=512, latent=3))
    recon, mu, logvar = model(torch.rand(4, 784))
    assert recon.shape == (4, 784) and mu.shape == logvar.shape == (4, 3)
    names = [n for n, _ in model.named_children()]
    assert names == ["fc1", "fc21", "fc22", "fc3", "fc4"]
    x = torch.rand(4, 784)
    assert torch.equal(model.encode_mean(x), model.encode(x)[0])  # the means, not a sample


def test_classifier_shapes():
    model = ImageClassifier(ClassifierConfig())
    x = torch.rand(3, 784)
    assert model(x).shape == (3, 10) and model.features(x).shape == (3, 128)


def test_batched_forward_equals_each_member():
    torch.manual_seed(0)
    models = [Autoencoder(AEConfig(hidden=16, latent=k)) for k in (2, 5, 3)]
    batched = BatchedAutoencoder(models)
    x = torch.rand(7, 784)
    out = batched(x)
    assert out.shape == (3, 7, 784)
    for i, model in enumerate(models):
        torch.testing.assert_close(out[i], model(x))
        torch.testing.assert_close(batched.member(i)(x), model(x))


def test_batched_forward_takes_a_batch_per_member():
    torch.manual_seed(0)
    models = [Autoencoder(AEConfig(hidden=16, latent=2)) for _ in range(3)]
    batched = BatchedAutoencoder(models)
    x = torch.rand(3, 7, 784)
    out = batched(x)
    for i, model in enumerate(models):
        torch.testing.assert_close(out[i], model(x[i]))


def test_batched_vae_equals_each_member():
    torch.manual_seed(0)
    models = [VAE(VAEConfig(hidden=16, latent=2)) for _ in range(3)]
    batched = BatchedVAE(models)
    shared, own = torch.rand(5, 784), torch.rand(3, 5, 784)
    for x in (shared, own):
        mu, logvar = batched.encode(x)
        z = torch.randn(3, 5, 2)
        logits = batched.decode_logits(z)
        terms = vae_loss(logits, x.expand(3, 5, 784), mu, logvar)
        assert mu.shape == (3, 5, 2) and terms["loss"].shape == (3,)
        for i, model in enumerate(models):
            xi = x if x.dim() == 2 else x[i]
            single_mu, single_logvar = model.encode(xi)
            torch.testing.assert_close(mu[i], single_mu)
            torch.testing.assert_close(logvar[i], single_logvar)
            torch.testing.assert_close(logits[i], model.decode_logits(z[i]))
            single = vae_loss(model.decode_logits(z[i]), xi, single_mu, single_logvar)
            torch.testing.assert_close(terms["loss"][i], single["loss"])
            member = batched.member(i)
            torch.testing.assert_close(member.decode(z[i]), model.decode(z[i]))


def test_checkpoint_rebuilds_the_same_model(tmp_path):
    model = VAE(VAEConfig(hidden=16, latent=2))
    with io.transaction() as out:
        out.save_checkpoint(tmp_path / "ckpt", model, config_dict(model.config))
    config, state = io.load_checkpoint(tmp_path / "ckpt")
    rebuilt = build(config)
    rebuilt.load_state_dict(state)
    z = torch.randn(3, 2)
    torch.testing.assert_close(rebuilt.decode(z), model.decode(z), rtol=0, atol=0)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors"]


def test_kl_matches_torch_distributions():
    mu, logvar = torch.randn(6, 4), torch.randn(6, 4)
    q, prior = Normal(mu, torch.exp(0.5 * logvar)), Normal(torch.zeros(4), torch.ones(4))
    torch.testing.assert_close(gaussian_kl(mu, logvar), kl_divergence(q, prior).sum(-1))
    assert gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)).abs().max() == 0


def test_bernoulli_nll_is_summed_bce():
    logits, x = torch.randn(3, 784), torch.rand(3, 784)
    expected = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="none").sum(-1)
    torch.testing.assert_close(bernoulli_nll(logits, x), expected, rtol=1e-4, atol=1e-3)


def test_vae_loss_is_recon_plus_kl():
    logits, x, mu, logvar = torch.randn(3, 784), torch.rand(3, 784), torch.randn(3, 2), torch.randn(3, 2)
    terms = vae_loss(logits, x, mu, logvar)
    torch.testing.assert_close(terms["loss"], terms["recon"] + terms["kl"])


def test_mse_per_pixel_per_member():
    x = torch.zeros(4, 784)
    recon = torch.stack([torch.full((4, 784), 0.5), torch.full((4, 784), 0.1)])
    torch.testing.assert_close(mse_per_pixel(recon, x), torch.tensor([0.25, 0.01]))
    assert mse_per_pixel(recon[0], x).item() == pytest.approx(0.25)


def test_reparameterize_samples_have_mean_mu_and_variance_exp_logvar():
    torch.manual_seed(0)
    mu = torch.tensor([1.0, -2.0, 0.0])
    logvar = torch.tensor([4.0, 0.25, 1.0]).log()
    z = VAE.reparameterize(mu.expand(200_000, 3), logvar.expand(200_000, 3))
    torch.testing.assert_close(z.mean(0), mu, atol=0.02, rtol=0)
    torch.testing.assert_close(z.var(0), logvar.exp(), atol=0, rtol=0.02)


def test_vae_loss_is_a_monte_carlo_negative_elbo_from_torch_distributions():
    """The training objective, averaged over many latent draws, equals -ELBO estimated with
    torch.distributions' own sampling, Bernoulli likelihood and Gaussian KL."""
    from torch.distributions import Bernoulli

    from stages.lib.train import vae_objective

    torch.manual_seed(0)
    model = VAE(VAEConfig(hidden=8, latent=2))
    with torch.no_grad():
        model.fc22.bias.fill_(1.5)  # a wide posterior, far from unit variance
    x = (torch.rand(3, 784) > 0.5).float()
    draws = 20_000
    xs = x.repeat(draws, 1)
    with torch.no_grad():
        ours = vae_objective(model, xs, torch.zeros(len(xs)))["loss"].item()
        mu, logvar = model.encode(xs)
        q = Normal(mu, (0.5 * logvar).exp())
        z = q.sample()
        log_lik = Bernoulli(logits=model.decode_logits(z)).log_prob(xs).sum(-1)
        kl = kl_divergence(q, Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(-1)
        reference = -(log_lik - kl).mean().item()
    assert ours == pytest.approx(reference, rel=5e-3)
