"""The study's models: a ReLU MLP autoencoder, its VAE twin, and a batched stack for sweeps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from stages.lib.io import load_checkpoint

INPUT_DIM = 28 * 28


@dataclass(frozen=True)
class AEConfig:
    input_dim: int = INPUT_DIM
    hidden: int = 512
    latent: int = 2


class Autoencoder(nn.Module):
    """``Autoencoder(784, 512, latent)``: 784-512-latent-512-784, ReLU, sigmoid output."""

    def __init__(self, config: AEConfig) -> None:
        super().__init__()
        self.config = config
        d, h, z = config.input_dim, config.hidden, config.latent
        self.encoder = nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, z))
        self.decoder = nn.Sequential(nn.Linear(z, h), nn.ReLU(), nn.Linear(h, d), nn.Sigmoid())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


@dataclass(frozen=True)
class VAEConfig:
    input_dim: int = INPUT_DIM
    hidden: int = 512
    latent: int = 2


class VAE(nn.Module):
    """The study's VAE: ``fc1`` -> (``fc21`` mu, ``fc22`` log-variance); ``fc3`` -> ``fc4``."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        d, h, z = config.input_dim, config.hidden, config.latent
        self.fc1 = nn.Linear(d, h)
        self.fc21 = nn.Linear(h, z)
        self.fc22 = nn.Linear(h, z)
        self.fc3 = nn.Linear(z, h)
        self.fc4 = nn.Linear(h, d)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.fc1(x))
        return self.fc21(h), self.fc22(h)

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        """The latent means: the VAE's deterministic code, which its figures and measures read."""
        return self.encode(x)[0]

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc4(torch.relu(self.fc3(z)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


class BatchedAutoencoder(nn.Module):
    """Several :class:`Autoencoder` of different latent sizes trained as one model.

    Member ``m`` keeps its own weights, stacked along a leading axis; latents are padded
    to the largest size and masked, so padded units get zero gradient and never move under
    Adam. Every member sees the same mini-batch, and the first layer of all members is one
    wide GEMM. Per-member losses are independent, so summing them for ``backward`` gives
    each member exactly the gradient it would get alone.
    """

    def __init__(self, models: Sequence[Autoencoder]) -> None:
        super().__init__()
        configs = [m.config for m in models]
        if len({(c.input_dim, c.hidden) for c in configs}) != 1:
            raise ValueError("batched members must share input and hidden sizes")
        self.configs = configs
        h = configs[0].hidden
        width = max(c.latent for c in configs)

        def pad(t: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
            out = t.new_zeros(rows, cols)
            out[: t.shape[0], : t.shape[1]] = t
            return out

        def stack(fn) -> nn.Parameter:
            return nn.Parameter(torch.stack([fn(m) for m in models]).detach().clone())

        # The Linear layers sit at indices 0 and 2 of each Sequential.
        # w1 is (d, members, h) so that one (B, d) @ (d, members * h) GEMM encodes all members.
        w1 = torch.stack([m.encoder[0].weight.T for m in models], 1)
        self.w1 = nn.Parameter(w1.detach().clone())
        self.b1 = stack(lambda m: m.encoder[0].bias[None])
        self.w2 = stack(lambda m: pad(m.encoder[2].weight.T, h, width))
        self.b2 = stack(lambda m: pad(m.encoder[2].bias[None], 1, width))
        self.w3 = stack(lambda m: pad(m.decoder[0].weight.T, width, h))
        self.b3 = stack(lambda m: m.decoder[0].bias[None])
        self.w4 = stack(lambda m: m.decoder[2].weight.T)
        self.b4 = stack(lambda m: m.decoder[2].bias[None])
        mask = torch.zeros(len(models), 1, width)
        for i, c in enumerate(configs):
            mask[i, :, : c.latent] = 1.0
        self.register_buffer("mask", mask)

    @property
    def members(self) -> int:
        return len(self.configs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, d), one batch for all, or (members, B, d), a batch each -> reconstructions
        (members, B, d)."""
        _, m, h = self.w1.shape
        if x.dim() == 3:
            hid = torch.bmm(x, self.w1.transpose(0, 1))
        else:
            hid = (x @ self.w1.flatten(1)).reshape(len(x), m, h).transpose(0, 1)
        hid = torch.relu(hid + self.b1)
        z = torch.baddbmm(self.b2, hid, self.w2) * self.mask
        hid = torch.relu(torch.baddbmm(self.b3, z, self.w3))
        return torch.sigmoid(torch.baddbmm(self.b4, hid, self.w4))

    def member(self, i: int) -> Autoencoder:
        """Member ``i`` as a stand-alone :class:`Autoencoder` (a copy of its weights)."""
        cfg = self.configs[i]
        z = cfg.latent
        model = Autoencoder(cfg)
        with torch.no_grad():
            model.encoder[0].weight.copy_(self.w1[:, i].T)
            model.encoder[0].bias.copy_(self.b1[i, 0])
            model.encoder[2].weight.copy_(self.w2[i, :, :z].T)
            model.encoder[2].bias.copy_(self.b2[i, 0, :z])
            model.decoder[0].weight.copy_(self.w3[i, :z].T)
            model.decoder[0].bias.copy_(self.b3[i, 0])
            model.decoder[2].weight.copy_(self.w4[i].T)
            model.decoder[2].bias.copy_(self.b4[i, 0])
        return model.to(self.w1.device)


class BatchedVAE(nn.Module):
    """Several :class:`VAE` of one shape trained as one model: each layer's weights stacked
    along a leading member axis (members, in, out), so that a layer is one batched GEMM.

    Inputs are (B, d), one batch for all, or (members, B, d), a batch each; every output has
    the member axis first. Per-member losses are independent, so summing them for
    ``backward`` gives each member the gradient it would get alone.
    """

    LAYERS = ("fc1", "fc21", "fc22", "fc3", "fc4")

    def __init__(self, models: Sequence[VAE]) -> None:
        super().__init__()
        if len({m.config for m in models}) != 1:
            raise ValueError("batched VAEs must share one config")
        self.config = models[0].config
        for name in self.LAYERS:
            layers = [getattr(m, name) for m in models]
            self.register_parameter(
                f"{name}_w", nn.Parameter(torch.stack([lin.weight.T for lin in layers]).detach().clone())
            )
            self.register_parameter(
                f"{name}_b", nn.Parameter(torch.stack([lin.bias[None] for lin in layers]).detach().clone())
            )

    @property
    def members(self) -> int:
        return len(self.fc1_w)

    def _linear(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x, getattr(self, f"{name}_w")) + getattr(self, f"{name}_b")

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self._linear("fc1", x))
        return self._linear("fc21", h), self._linear("fc22", h)

    reparameterize = staticmethod(VAE.reparameterize)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self._linear("fc4", torch.relu(self._linear("fc3", z)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode_logits(z))

    def member(self, i: int) -> VAE:
        """Member ``i`` as a stand-alone :class:`VAE` (a copy of its weights)."""
        model = VAE(self.config)
        with torch.no_grad():
            for name in self.LAYERS:
                getattr(model, name).weight.copy_(getattr(self, f"{name}_w")[i].T)
                getattr(model, name).bias.copy_(getattr(self, f"{name}_b")[i, 0])
        return model.to(self.fc1_w.device)


@dataclass(frozen=True)
class ClassifierConfig:
    channels1: int = 16
    channels2: int = 32
    hidden: int = 128
    # The training set's pixel mean and std (MNIST's by default): standardised inputs train
    # markedly faster.
    pixel_mean: float = 0.1307
    pixel_std: float = 0.3081


class ImageClassifier(nn.Module):
    """A small LeNet-style CNN that judges generated images (its ``hidden`` features feed the
    Frechet distance): conv5-pool-conv5-pool, a ``hidden``-unit layer, 10 logits."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2, h = config.channels1, config.channels2, config.hidden
        self.conv = nn.Sequential(
            nn.Conv2d(1, c1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        # Channels-last convolutions and pooling: on 2 CPU cores a training step took 15
        # instead of 19 ms and inference half the time; the same weights, other strides.
        self.conv.to(memory_format=torch.channels_last)
        self.fc1 = nn.Linear(c2 * 7 * 7, h)
        self.fc2 = nn.Linear(h, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations of (B, 784) images in [0, 1]."""
        x = (x.view(-1, 1, 28, 28) - self.config.pixel_mean) / self.config.pixel_std
        x = x.contiguous(memory_format=torch.channels_last)
        return torch.relu(self.fc1(self.conv(x).flatten(1)))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from :meth:`features`, so one pass serves both."""
        return self.fc2(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def config_dict(config: AEConfig | VAEConfig | ClassifierConfig) -> dict[str, int | str]:
    return {"kind": type(config).__name__, **asdict(config)}


def build(config: dict) -> nn.Module:
    """Rebuild a model from the dict written by :func:`config_dict`."""
    config = dict(config)
    kind = config.pop("kind")
    if kind == "AEConfig":
        return Autoencoder(AEConfig(**config))
    if kind == "VAEConfig":
        return VAE(VAEConfig(**config))
    if kind == "ClassifierConfig":
        return ImageClassifier(ClassifierConfig(**config))
    raise ValueError(f"unknown model kind {kind!r}")


def load_model(path: Path) -> nn.Module:
    """Rebuild a model from its checkpoint directory, in eval mode."""
    config, state = load_checkpoint(path)
    model = build(config)
    model.load_state_dict(state)
    return model.eval()
