"""The latent-space explorer: one self-contained HTML page, its decoders computed in plain JavaScript.

The page embeds, as base64, each 2-D model's decoder (the large second layer as 16-bit integers
with a float32 scale per row, the rest float32), the codes of a subsample of test images in every
model's space, and those images. Nothing is fetched: it opens from disk with no network. The
JavaScript decode is the pipeline's: ``sigmoid(W2 relu(W1 z + b1) + b2)`` for the autoencoders and the VAE (its decoder
``fc3, fc4``), ``mean + (z * scale) @ components`` for PCA.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stages.lib.io import load_checkpoint
from stages.lib.models import VAE, Autoencoder, load_model
from stages.lib.pca import PCACodec

IMAGES = 1000  # test images embedded (784 bytes each): the page stays within its 6 MB budget
MARGIN = 0.05  # matplotlib's default axis margin, so the axes match the report's scatter plots


Model = Autoencoder | VAE | PCACodec


def load_models(root: Path, seeds: Sequence[int]) -> list[tuple[str, Model]]:
    """The page's models in its panel order, from a pipeline's models/ folder."""
    _, tensors = load_checkpoint(root / "models" / "pca")
    autoencoders = [(f"Autoencoder, seed {s}", load_model(root / "models" / "ae" / f"seed_{s}")) for s in seeds]
    return [*autoencoders, ("PCA", PCACodec(**tensors)), ("VAE (means)", load_model(root / "models" / "vae"))]


def encoder(model: Model) -> Callable[[torch.Tensor], torch.Tensor]:
    """Images to 2-D codes: the VAE's means."""
    return model.encode_mean if isinstance(model, VAE) else model.encode


def layers(model: Autoencoder | VAE) -> tuple[nn.Linear, nn.Linear]:
    """The decoder's two linear layers: ``sigmoid(second(relu(first(z))))``."""
    return (model.decoder[0], model.decoder[2]) if isinstance(model, Autoencoder) else (model.fc3, model.fc4)


@dataclass(frozen=True)
class Space:
    """One model's 2-D latent space as the page shows it."""

    name: str
    model: Model
    codes: np.ndarray  # (all test images, latent) float32
    limit: float  # the decoded grid's square: -limit..limit on both axes


def _b64(array: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode()


def lattice(view: Sequence[float], latent: int, steps: int = 64) -> torch.Tensor:
    """(steps^2, latent) float64 points evenly over the view, further axes at 0."""
    x0, x1, y0, y1 = view
    grid = torch.cartesian_prod(
        torch.linspace(x0, x1, steps, dtype=torch.float64), torch.linspace(y0, y1, steps, dtype=torch.float64)
    )
    return torch.cat([grid, grid.new_zeros(len(grid), latent - 2)], 1)


def quantise(weight: torch.Tensor, inputs: torch.Tensor, damp: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """16-bit integers and one scale per input unit for the linear map ``inputs @ weight.T``
    (``weight``: (outputs, units)), rounded so that the map's outputs on ``inputs`` change least.

    Rounding each weight alone left the study's decoded pixels further from torch's than the
    page's 1e-3 at the far corners of their views, where the hidden activations are largest.
    Here each unit's weights are rounded in turn and the error is carried into the units not
    yet rounded, in proportion to how the inputs correlate them (the optimal-brain-surgeon
    update of GPTQ, Frantar et al., 2023); benchmarks/README.md has the errors of both.
    """
    w = weight.double().clone()  # (outputs, units)
    x = inputs.double()
    h = x.T @ x / len(x)
    h += damp * h.diagonal().mean() * torch.eye(len(h), dtype=h.dtype)  # units that never fire
    upper = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    # A margin over each unit's largest weight leaves room for the errors carried into it.
    scale = (1.05 * w.abs().amax(0) / 32767).clamp(min=torch.finfo(torch.float32).tiny).float().double()
    codes = torch.empty_like(w, dtype=torch.int16)
    for j in range(w.shape[1]):
        q = torch.round(w[:, j] / scale[j]).clamp(-32767, 32767)
        codes[:, j] = q.short()
        carried = (w[:, j] - q * scale[j]) / upper[j, j]
        w[:, j:] -= carried[:, None] * upper[j, j:][None, :]
    return codes, scale.float()


def relu_inputs(first: nn.Linear, view: Sequence[float]) -> torch.Tensor:
    """The hidden activations ``relu(first(z))`` over a lattice of the view: what the second
    layer sees wherever the pointer goes."""
    z = lattice(view, first.in_features)
    return torch.relu(F.linear(z, first.weight.double(), first.bias.double()))


def _mlp(first: nn.Linear, second: nn.Linear, view: Sequence[float]) -> dict:
    """``sigmoid(second(relu(first(z))))``, its large second layer transposed (hidden, 784), so
    that the page adds one contiguous row per active hidden unit, and stored as 16-bit
    integers times a float32 scale per row (:func:`quantise`): the size of float16, whose
    11-bit significand left decoded pixels of the study's models beyond the page's 1e-3."""
    with torch.no_grad():
        codes, scale = quantise(second.weight, relu_inputs(first, view))
        return {
            "kind": "mlp",
            "latent": first.in_features,
            "hidden": first.out_features,
            "w1": _b64(first.weight.numpy(), "<f4"),  # (hidden, latent)
            "b1": _b64(first.bias.numpy(), "<f4"),
            "w2t": _b64(codes.T.numpy(), "<i2"),  # (hidden, 784): weight = w2t * w2scale[row]
            "w2scale": _b64(scale.numpy(), "<f4"),
            "b2": _b64(second.bias.numpy(), "<f4"),
        }


def decoder_json(model: Model, view: Sequence[float]) -> dict:
    """What the page's decode reads; the view is where its pointer can go."""
    if not isinstance(model, PCACodec):
        return _mlp(*layers(model), view)
    return {
        "kind": "pca",
        "latent": len(model.scale),
        "mean": _b64(model.mean.numpy(), "<f4"),
        "components": _b64(model.components.numpy(), "<f4"),  # (k, 784)
        "scale": _b64(model.scale.numpy(), "<f4"),
    }


def view(codes: np.ndarray, limit: float) -> list[float]:
    """[x0, x1, y0, y1]: the scatter's extent with matplotlib's margins, widened to hold the grid's square."""
    xy = codes[:, :2].astype(np.float64)
    low, high = xy.min(0), xy.max(0)
    pad = MARGIN * (high - low)
    low, high = np.minimum(low - pad, -limit), np.maximum(high + pad, limit)
    return [float(low[0]), float(high[0]), float(low[1]), float(high[1])]


def subsample(n: int, count: int, seed: int = 0) -> torch.Tensor:
    """Which test images the page holds: a seeded random ``count`` of ``n``, in order."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:count].sort().values


def payload(spaces: Sequence[Space], images: torch.Tensor, labels: torch.Tensor, classes: Sequence[str]) -> dict:
    """Everything the page reads. ``images`` (n, 784) in [0, 1] and ``labels`` are the whole test
    set; the page holds :data:`IMAGES` of them."""
    rows = subsample(len(labels), min(IMAGES, len(labels)))
    pixels = (images[rows] * 255).round().to(torch.uint8).numpy()
    return {
        "classes": list(classes),
        "labels": labels[rows].tolist(),
        "images": _b64(pixels, "u1"),
        "rows": rows.tolist(),  # which test images these are
        "models": [_space(s, rows) for s in spaces],
    }


def _space(s: Space, rows: torch.Tensor) -> dict:
    where = view(s.codes, s.limit)
    return {
        "name": s.name,
        "decoder": decoder_json(s.model, where),
        "codes": _b64(s.codes[rows.numpy()][:, :2], "<f4"),
        "view": where,
        "limit": s.limit,
    }


def page(data: dict, title: str) -> str:
    """The page: explorer.html beside this module with explorer.js, the title and the data filled in."""
    template, script = (Path(__file__).with_suffix(suffix).read_text() for suffix in (".html", ".js"))
    blob = json.dumps(data, separators=(",", ":"), sort_keys=True).replace("</", "<\\/")
    return template.replace("{{SCRIPT}}", script).replace("{{TITLE}}", title).replace("{{DATA}}", blob)
