"""One training loop for every model in the study.

The data set lives on the device as one tensor; each epoch draws a permutation from a
generator seeded by the run's seed, and losses are accumulated on the device so the host
waits for the device once per epoch, not once per step. On CUDA each full-size step is
replayed from a captured CUDA graph (:class:`_GraphedStep`).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stages.lib.cli import StageError
from stages.lib.data import Dataset, Split
from stages.lib.losses import mse_per_pixel, vae_loss
from stages.lib.models import VAE, BatchedVAE, ClassifierConfig, ImageClassifier
from stages.lib.progress import Epoch, line
from stages.lib.runtime import EVAL_BATCH, batches, seed_everything

Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


class DivergedError(StageError):
    """A loss turned NaN or infinite: the stage stops before it writes anything."""


@dataclass(frozen=True)
class Recipe:
    epochs: int
    batch_size: int
    lr: float
    seed: int
    precision: str = "fp32"
    lr_decay: float = 1.0  # learning rate multiplied by this after every epoch; 1 = constant
    # A batched model whose members each draw their own batch order, from these seeds (one
    # per member); None: every member sees the batches drawn from ``seed``.
    member_seeds: tuple[int, ...] | None = None
    cuda_graphs: bool = True  # on CUDA, replay steps from a CUDA graph; same kernels, same results


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    # Each weight is cast once per forward, so autocast's cast cache saves nothing here, and
    # CUDA graph capture requires it off.
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16", cache_enabled=False)


def ae_objective(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """MSE per pixel; one value per member for a :class:`BatchedAutoencoder`."""
    return {"loss": mse_per_pixel(model(x), x)}


def vae_objective(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Negative ELBO; one value per member for a :class:`BatchedVAE`."""
    assert isinstance(model, VAE | BatchedVAE)
    mu, logvar = model.encode(x)
    logits = model.decode_logits(model.reparameterize(mu, logvar))
    return vae_loss(logits, x, mu, logvar)


def classifier_objective(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    logits = model(x)
    return {"loss": F.cross_entropy(logits.float(), y), "error": (logits.argmax(1) != y).float().mean()}


class _Sums:
    """Sample-weighted sums of loss terms, kept on the device (no host sync).

    Updated in place, so that the steps a CUDA graph replays add to the same tensors.
    """

    def __init__(self) -> None:
        self.totals: dict[str, torch.Tensor] = {}

    def add(self, terms: dict[str, torch.Tensor], n: int) -> None:
        for k, v in terms.items():
            v = v.detach() * n
            if k in self.totals:
                self.totals[k] += v
            else:
                self.totals[k] = v

    def means(self, count: int) -> dict[str, torch.Tensor]:
        """The means over ``count`` samples; the sums start again from zero."""
        means = {k: v / count for k, v in self.totals.items()}
        for v in self.totals.values():
            v.zero_()
        return means


@torch.no_grad()
def evaluate(model: nn.Module, objective: Objective, data: Split, precision: str = "fp32") -> dict[str, torch.Tensor]:
    """Mean of each loss term over a split (values stay on the device)."""
    was_training = model.training
    model.eval()
    sums = _Sums()
    with autocast(data.images.device, precision):
        for idx in batches(len(data), EVAL_BATCH):
            sums.add(objective(model, data.images[idx], data.labels[idx]), len(data.labels[idx]))
    model.train(was_training)
    return sums.means(len(data))


class _Step:
    """One training step on the batch at ``idx``: forward, backward, Adam; the batch's loss
    terms are added to :attr:`sums`."""

    def __init__(
        self, model: nn.Module, objective: Objective, opt: torch.optim.Optimizer, train: Split, precision: str
    ) -> None:
        self.model, self.objective, self.opt, self.train, self.precision = model, objective, opt, train, precision
        self.sums = _Sums()

    def __call__(self, idx: torch.Tensor) -> None:
        xb, yb = self.train.images[idx], self.train.labels[idx]
        with autocast(xb.device, self.precision):
            terms = self.objective(self.model, xb, yb)
        self.opt.zero_grad()
        terms["loss"].sum().backward()
        self.opt.step()
        self.sums.add(terms, idx.shape[-1])  # idx: (B,), or (members, B) for a batch each


class _GraphedStep(_Step):
    """A :class:`_Step` that replays full-size batches from a captured CUDA graph.

    An eager step launches a few dozen small kernels, each behind Python, autograd and
    launch overhead that at batch 128 outlasts the kernel itself. Captured once, the
    step (gather, forward, backward, fused Adam, loss sums) replays as one launch, with
    the same kernels and arguments, so the results do not change. As capture requires,
    the first steps run eagerly on a side stream (cuBLAS handles and Adam's state are made
    there); a smaller last batch runs eagerly, and a new learning rate is captured anew.
    """

    WARMUP_STEPS = 3

    def __init__(self, *args, batch_size: int) -> None:
        super().__init__(*args)
        self.batch_size = batch_size
        self.idx: torch.Tensor | None = None  # the captured batch's indices, refilled each replay
        self.graph: torch.cuda.CUDAGraph | None = None
        self.graph_lr: float | None = None
        self.warmed_up = 0

    def __call__(self, idx: torch.Tensor) -> None:
        if idx.shape[-1] != self.batch_size:
            super().__call__(idx)
            return
        if self.warmed_up < self.WARMUP_STEPS:
            self.warmed_up += 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                super().__call__(idx)
            torch.cuda.current_stream().wait_stream(side)
            return
        lr = self.opt.param_groups[0]["lr"]
        if self.idx is None:
            self.idx = torch.empty_like(idx)
        self.idx.copy_(idx)
        if self.graph is None or lr != self.graph_lr:
            self.graph, self.graph_lr = torch.cuda.CUDAGraph(), lr
            with torch.cuda.graph(self.graph):
                super().__call__(self.idx)
        self.graph.replay()


def to_python(terms: dict[str, torch.Tensor], prefix: str) -> dict[str, float | list[float]]:
    return {f"{prefix}{k}": v.tolist() for k, v in terms.items()}


def fit(
    model: nn.Module, objective: Objective, train: Split, test: Split, recipe: Recipe, name: str
) -> list[dict[str, float | list[float]]]:
    """Train with Adam; return one record per epoch with train (running) and test losses.

    ``objective`` returns named terms; ``loss`` is minimised (summed first when it holds one
    value per member of a batched model, whose gradients are independent).
    """
    model.train()
    device = train.images.device
    graphs = recipe.cuda_graphs and device.type == "cuda"
    # Fused: one kernel over all parameters instead of a loop of small ops (benchmarks/README.md).
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr, fused=True, capturable=graphs)
    schedule = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=recipe.lr_decay)
    args = (model, objective, opt, train, recipe.precision)
    step = _GraphedStep(*args, batch_size=recipe.batch_size) if graphs else _Step(*args)
    seeds = (recipe.seed,) if recipe.member_seeds is None else recipe.member_seeds
    order_gens = [torch.Generator().manual_seed(s) for s in seeds]
    history = []
    for epoch in range(1, recipe.epochs + 1):
        start = time.perf_counter()
        orders = [torch.randperm(len(train), generator=g) for g in order_gens]
        order = (orders[0] if recipe.member_seeds is None else torch.stack(orders)).to(device)
        for idx in batches(len(train), recipe.batch_size, order):
            step(idx)
        schedule.step()
        record: dict[str, float | list[float]] = {"epoch": epoch}
        record |= to_python(step.sums.means(len(train)), "train_")
        record |= to_python(evaluate(model, objective, test, recipe.precision), "test_")
        _check_finite(record, name)
        history.append(record)
        seconds = time.perf_counter() - start
        report = Epoch(name=name, epoch=epoch, epochs=recipe.epochs, summary=_summary(record), seconds=seconds)
        print(line(report), file=sys.stderr)
    return history


def _check_finite(record: dict[str, float | list[float]], name: str) -> None:
    for key, value in record.items():
        if not all(math.isfinite(v) for v in np.ravel(value)):
            raise DivergedError(
                f"{name}: {key} is {value} at epoch {record['epoch']}; "
                "training diverged, so nothing is written (try a smaller learning rate)"
            )


def _summary(record: dict[str, float | list[float]]) -> str:
    parts = []
    for k in ("train_loss", "test_loss"):
        v = record[k]
        parts.append(f"{k} {np.mean(v):.5f}" + (" (mean of members)" if isinstance(v, list) else ""))
    return ", ".join(parts)


def history_table(history: list[dict]) -> tuple[list[str], list[list]]:
    """Per-epoch records as CSV columns and rows (floats rounded for stable, small files)."""
    columns = list(history[0])
    rows = [[_fmt(record[c]) for c in columns] for record in history]
    return columns, rows


def _fmt(value: object) -> object:
    return float(f"{value:.6g}") if isinstance(value, float) else value


def train_classifier(train: Split, test: Split, recipe: Recipe, dataset: Dataset, name: str) -> tuple[nn.Module, list]:
    """The image classifier of a data set (inputs standardised by its pixel statistics),
    trained by ``recipe`` from weights drawn from its seed; returns it and its history."""
    seed_everything(recipe.seed)
    config = ClassifierConfig(pixel_mean=dataset.pixel_mean, pixel_std=dataset.pixel_std)
    model = ImageClassifier(config).to(train.images.device)
    return model, fit(model, classifier_objective, train, test, recipe, name)


def fit_fresh_seeds(
    build: Callable[[], nn.Module],
    batch: Callable[[list[nn.Module]], nn.Module],
    objective: Objective,
    train: Split,
    test: Split,
    recipe: Recipe,
    name: str,
) -> tuple[nn.Module, list[dict[str, float | list[float]]]]:
    """One model per seed of ``recipe.member_seeds``, its initial weights drawn from that seed,
    trained together as one batched model (``batch``), each member on its own batch order."""
    members = []
    for seed in recipe.member_seeds:
        seed_everything(seed)
        members.append(build())
    model = batch(members).to(train.images.device)
    return model, fit(model, objective, train, test, recipe, name)
