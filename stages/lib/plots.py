"""Figures of the study. Builders return matplotlib figures; ``io.png_bytes`` renders them."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # headless and deterministic; must precede pyplot

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

SIDE = 28


def latent_grid(limit: float, cells: int) -> np.ndarray:
    """Grid points (cells*cells, 2) over [-limit, limit]^2, row-major from the top-left.

    Rows run from +limit (top) to -limit (bottom) so the tiled image reads like a plot.
    """
    axis = np.linspace(-limit, limit, cells, dtype=np.float32)
    z1, z2 = np.meshgrid(axis, axis[::-1])
    return np.stack([z1.ravel(), z2.ravel()], axis=1)


def tile(images: np.ndarray, cols: int) -> np.ndarray:
    """Arrange (n, 784) images into one (rows*28, cols*28) array, row-major."""
    rows = -(-len(images) // cols)
    canvas = np.zeros((rows * cols, SIDE, SIDE), dtype=np.float32)
    canvas[: len(images)] = images.reshape(-1, SIDE, SIDE)
    return canvas.reshape(rows, cols, SIDE, SIDE).transpose(0, 2, 1, 3).reshape(rows * SIDE, cols * SIDE)


def draw_scatter(ax: Axes, codes: np.ndarray, labels: np.ndarray, classes: Sequence[str], title: str) -> None:
    """The first two latent axes, one colour per class, the class names on the colour bar."""
    n = len(classes)
    points = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", vmin=-0.5, vmax=n - 0.5, s=2)
    bar = ax.figure.colorbar(points, ax=ax, ticks=range(n), label="class")
    bar.ax.set_yticklabels(classes)
    ax.set(title=title, xlabel="$z_1$", ylabel="$z_2$")


def draw_grid(ax: Axes, images: np.ndarray, limit: float, cells: int, title: str) -> None:
    ax.imshow(tile(images, cells), cmap="gray", vmin=0, vmax=1, extent=(-limit, limit, -limit, limit))
    ax.set(title=title, xlabel="$z_1$", ylabel="$z_2$")


def scatter_figure(codes: np.ndarray, labels: np.ndarray, classes: Sequence[str], title: str) -> Figure:
    fig, ax = plt.subplots(figsize=(6, 5), layout="constrained")
    draw_scatter(ax, codes, labels, classes, title)
    return fig


def grid_figure(images: np.ndarray, limit: float, cells: int, title: str) -> Figure:
    fig, ax = plt.subplots(figsize=(6, 6), layout="constrained")
    draw_grid(ax, images, limit, cells, title)
    return fig


def samples_figure(images: np.ndarray, title: str) -> Figure:
    cols = int(np.ceil(np.sqrt(len(images))))
    fig, ax = plt.subplots(figsize=(5, 5), layout="constrained")
    ax.imshow(tile(images, cols), cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    ax.set_title(title)
    return fig


def side_by_side_figure(
    panels: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray, float, int]], classes: Sequence[str]
) -> Figure:
    """One column per model: (name, codes, labels, grid images, grid limit, grid cells per side)."""
    fig, axes = plt.subplots(2, len(panels), figsize=(6 * len(panels), 11), layout="constrained", squeeze=False)
    for col, (name, codes, labels, images, limit, cells) in enumerate(panels):
        draw_scatter(axes[0, col], codes, labels, classes, f"{name}: test-set latent codes")
        draw_grid(axes[1, col], images, limit, cells, f"{name}: decoded grid")
    return fig


def spread_figure(panels: Sequence[tuple[str, dict[str, tuple[np.ndarray, np.ndarray]], float | None, bool]]) -> Figure:
    """One panel per claim: each group's measure over seeds (the study's models as red diamonds,
    the fresh ones as grey dots) against the claim's threshold (dashed).

    ``panels``: (title, {group: (values, is the study's)}, threshold or None, log scale)."""
    cols = 4
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), layout="constrained", squeeze=False)
    for ax, (title, groups, threshold, log) in zip(axes.flat, panels, strict=False):
        for x, (values, study) in enumerate(groups.values()):
            offsets = np.linspace(-0.2, 0.2, len(values)) if len(values) > 1 else np.zeros(1)
            ax.scatter(x + offsets[~study], values[~study], s=12, color="0.55", label="fresh seeds" if x == 0 else None)
            ax.scatter(x + offsets[study], values[study], s=40, marker="D", color="tab:red",
                       label="the study's" if x == 0 else None)  # fmt: skip
        if threshold is not None:
            ax.axhline(threshold, color="black", linestyle="--", linewidth=1, label="threshold")
        ax.set_xticks(range(len(groups)), list(groups))
        ax.set_xlim(-0.6, len(groups) - 0.4)
        ax.set_title(title, fontsize=9)
        if log:
            ax.set_yscale("log")
    for ax in axes.flat[len(panels) :]:
        ax.set_axis_off()
    axes.flat[0].legend(fontsize=7)
    return fig


def sweep_figure(sizes: Sequence[int], curves: dict[str, Sequence[float]], elbows: dict[str, int | None]) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    for label, values in curves.items():
        style = "-o" if "test" in label else "--."
        ax.plot(sizes, values, style, label=label, markersize=4)
    ax.set(xlabel="latent size", ylabel="reconstruction MSE per pixel", title="Autoencoder vs PCA", yscale="log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # latent sizes are whole numbers
    for method, knee in elbows.items():
        if knee is not None:
            ax.axvline(knee, color="gray", linestyle=":", linewidth=1)
            # Beside the line, not on it, at the top of the axes whatever the data's scale.
            ax.annotate(
                f"{method} elbow {knee}",
                (knee, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(3, -3),
                textcoords="offset points",
                rotation=90,
                va="top",
                ha="left",
                fontsize=8,
            )
    ax.legend()
    return fig
