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
    return (lambda x: model.encode(x)[0]) if isinstance(model, VAE) else model.encode


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
    blob = json.dumps(data, separators=(",", ":"), sort_keys=True).replace("</", "<\\/")
    return PAGE.replace("{{TITLE}}", title).replace("{{DATA}}", blob)


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{TITLE}}</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 16px; color: #222; }
  h1 { font-size: 18px; margin: 0 0 4px; }
  p { margin: 4px 0 10px; max-width: 70em; }
  #top { display: flex; gap: 24px; align-items: center; margin-bottom: 8px; }
  #legend span { display: inline-block; margin-right: 10px; }
  #legend i { display: inline-block; width: 10px; height: 10px; border-radius: 5px; margin-right: 3px; }
  #panels { display: flex; flex-wrap: wrap; gap: 18px; }
  .panel { border: 1px solid #ccc; padding: 8px; }
  .panel h2 { font-size: 14px; margin: 0 0 4px; }
  .row { display: flex; gap: 8px; align-items: flex-start; }
  canvas.scatter { cursor: crosshair; }
  canvas.digit, canvas.strip { image-rendering: pixelated; background: #000; }
  canvas.digit { width: 112px; height: 112px; }
  canvas.strip { height: 56px; margin-top: 6px; display: block; visibility: hidden; }
  .z { font: 12px ui-monospace, monospace; color: #555; }
</style>
</head>
<body>
<h1>{{TITLE}}</h1>
<p>Move the pointer over a latent space: the image beside it is that point decoded, live, by the
model's own decoder. Over a test image's dot, the image is marked in every space (a black ring),
its original is shown above and every panel decodes it from its own code. Click twice to pin two
points: the strip below the panel decodes the straight path between them. The dashed square is
the report's decoded grid.</p>
<div id="top">
  <div><canvas id="original" class="digit" width="28" height="28"></canvas></div>
  <div><div id="hovered" class="z">original: point at a test image</div><div id="legend"></div></div>
</div>
<div id="panels"></div>
<script id="data" type="application/json">{{DATA}}</script>
<script>
"use strict";
const DATA = JSON.parse(document.getElementById("data").textContent);
const SIDE = 28, PIXELS = 784, SIZE = 300, STRIP = 10, HIT = 5;
const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];  // matplotlib's tab10

function bytes(b64) {
  const s = atob(b64), out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
const f32 = (b64) => new Float32Array(bytes(b64).buffer);
// decode(z, out): the model's decoder at latent point z (an array; missing axes are 0).
function decoder(spec) {
  const k = spec.latent;
  if (spec.kind === "pca") {
    const mean = f32(spec.mean), comps = f32(spec.components), scale = f32(spec.scale);
    return (z, out) => {
      out.set(mean);
      for (let a = 0; a < k; a++) {
        const w = (z[a] || 0) * scale[a], row = a * PIXELS;
        if (w !== 0) for (let i = 0; i < PIXELS; i++) out[i] += w * comps[row + i];
      }
      return out;
    };
  }
  const h = spec.hidden, w1 = f32(spec.w1), b1 = f32(spec.b1), b2 = f32(spec.b2);
  const w2t = new Int16Array(bytes(spec.w2t).buffer), scale = f32(spec.w2scale);
  const acc = new Float32Array(PIXELS);
  return (z, out) => {
    acc.set(b2);
    for (let j = 0; j < h; j++) {
      let v = b1[j];
      for (let a = 0; a < k; a++) v += w1[j * k + a] * (z[a] || 0);
      if (v <= 0) continue;  // ReLU: an inactive unit adds nothing
      const row = j * PIXELS, vs = v * scale[j];
      for (let i = 0; i < PIXELS; i++) acc[i] += vs * w2t[row + i];
    }
    for (let i = 0; i < PIXELS; i++) out[i] = 1 / (1 + Math.exp(-acc[i]));
    return out;
  };
}

function paint(canvas, values, x = 0) {  // values in [0, 1] (clipped) as grey pixels at column x
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(SIDE, SIDE);
  for (let i = 0; i < PIXELS; i++) {
    const v = Math.round(255 * Math.min(1, Math.max(0, values[i])));
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v;
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, x, 0);
}
function grey(canvas) {  // the red channel of every pixel: what paint() wrote
  const d = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  return Array.from({ length: d.length / 4 }, (_, i) => d[4 * i]);
}

const labels = DATA.labels, originals = bytes(DATA.images);
const state = { pointer: DATA.models.map(() => null), hovered: null, pins: DATA.models.map(() => []) };

class Panel {
  constructor(index, model) {
    this.index = index;
    this.model = model;
    this.decode = decoder(model.decoder);
    this.out = new Float32Array(PIXELS);
    this.codes = f32(model.codes);
    [this.x0, this.x1, this.y0, this.y1] = model.view;
    const box = document.createElement("div");
    box.className = "panel";
    box.innerHTML = `<h2>${model.name}</h2><div class="row">` +
      `<canvas class="scatter" width="${SIZE}" height="${SIZE}"></canvas>` +
      `<div><canvas class="digit" width="${SIDE}" height="${SIDE}"></canvas><div class="z">&nbsp;</div></div></div>` +
      `<canvas class="strip" width="${SIDE * STRIP}" height="${SIDE}"></canvas>`;
    document.getElementById("panels").append(box);
    [this.scatter, this.digit, this.strip] = box.querySelectorAll("canvas");
    this.label = box.querySelector(".z");
    this.dots = this.drawDots();
    this.scatter.addEventListener("mousemove", (e) => this.move(e.offsetX, e.offsetY));
    this.scatter.addEventListener("click", (e) => this.pin(e.offsetX, e.offsetY));
    this.redraw();
  }
  px(z1) { return (z1 - this.x0) / (this.x1 - this.x0) * SIZE; }
  py(z2) { return (this.y1 - z2) / (this.y1 - this.y0) * SIZE; }
  latent(x, y) { return [this.x0 + x / SIZE * (this.x1 - this.x0), this.y1 - y / SIZE * (this.y1 - this.y0)]; }
  drawDots() {  // the test codes, the grid's square and the axes, drawn once
    const layer = document.createElement("canvas");
    layer.width = layer.height = SIZE;
    const ctx = layer.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, SIZE, SIZE);
    ctx.strokeStyle = "#ddd";
    ctx.beginPath();
    ctx.moveTo(this.px(0), 0); ctx.lineTo(this.px(0), SIZE);
    ctx.moveTo(0, this.py(0)); ctx.lineTo(SIZE, this.py(0));
    ctx.stroke();
    for (let n = 0; n < labels.length; n++) {
      ctx.fillStyle = COLOURS[labels[n] % 10];
      ctx.fillRect(this.px(this.codes[2 * n]) - 1.5, this.py(this.codes[2 * n + 1]) - 1.5, 3, 3);
    }
    const l = this.model.limit;
    ctx.setLineDash([4, 3]);
    ctx.strokeStyle = "#444";
    ctx.strokeRect(this.px(-l), this.py(l), this.px(l) - this.px(-l), this.py(-l) - this.py(l));
    ctx.setLineDash([]);
    ctx.fillStyle = "#444";
    ctx.font = "10px sans-serif";
    ctx.fillText(`z1 ${this.x0.toFixed(1)} .. ${this.x1.toFixed(1)}`, 4, SIZE - 4);
    ctx.fillText(`z2 ${this.y0.toFixed(1)} .. ${this.y1.toFixed(1)}`, 4, 12);
    return layer;
  }
  redraw() {
    const ctx = this.scatter.getContext("2d");
    ctx.drawImage(this.dots, 0, 0);
    const ring = (z1, z2, colour, r) => {
      ctx.strokeStyle = colour;
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(this.px(z1), this.py(z2), r, 0, 2 * Math.PI);
      ctx.stroke();
    };
    const pins = state.pins[this.index];
    if (pins.length === 2) {
      ctx.strokeStyle = "#000";
      ctx.beginPath();
      ctx.moveTo(this.px(pins[0][0]), this.py(pins[0][1]));
      ctx.lineTo(this.px(pins[1][0]), this.py(pins[1][1]));
      ctx.stroke();
    }
    for (const p of pins) ring(p[0], p[1], "#e00", 4);
    if (state.hovered !== null) ring(this.codes[2 * state.hovered], this.codes[2 * state.hovered + 1], "#000", 6);
  }
  show(z) {  // decode z into the digit canvas
    paint(this.digit, this.decode(z, this.out));
    this.label.textContent = `z = (${z[0].toFixed(2)}, ${z[1].toFixed(2)})`;
  }
  nearest(x, y) {
    let best = null, bestD = HIT * HIT;
    for (let n = 0; n < labels.length; n++) {
      const dx = this.px(this.codes[2 * n]) - x, dy = this.py(this.codes[2 * n + 1]) - y, d = dx * dx + dy * dy;
      if (d <= bestD) { best = n; bestD = d; }
    }
    return best;
  }
  move(x, y) {
    const z = this.latent(x, y);
    state.pointer[this.index] = z;
    const hit = this.nearest(x, y);
    state.hovered = hit;
    if (hit === null) {
      this.show(z);
      document.getElementById("hovered").textContent = "original: point at a test image";
    } else {
      for (const p of panels) p.show([p.codes[2 * hit], p.codes[2 * hit + 1]]);
      const original = originals.subarray(hit * PIXELS, (hit + 1) * PIXELS);
      paint(document.getElementById("original"), Array.from(original, (v) => v / 255));
      document.getElementById("hovered").textContent =
        `original: test image ${DATA.rows[hit]}, class ${DATA.classes[labels[hit]]}`;
    }
    for (const p of panels) p.redraw();
  }
  pin(x, y) {
    const pins = state.pins[this.index];
    if (pins.length === 2) pins.length = 0;
    pins.push(this.latent(x, y));
    this.strip.style.visibility = pins.length === 2 ? "visible" : "hidden";
    if (pins.length === 2) {
      const [a, b] = pins;
      for (let s = 0; s < STRIP; s++) {
        const t = s / (STRIP - 1);
        paint(this.strip, this.decode([a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])], this.out), s * SIDE);
      }
    }
    this.redraw();
  }
}

document.getElementById("legend").innerHTML = DATA.classes
  .map((name, c) => `<span><i style="background:${COLOURS[c % 10]}"></i>${name}</span>`).join("");
const panels = DATA.models.map((m, i) => new Panel(i, m));

// For tests and benchmarks: the page's own decode and what its canvases show.
window.explorer = {
  names: DATA.models.map((m) => m.name),
  view: (i) => DATA.models[i].view,  // [z1 from, z1 to, z2 from, z2 to] of panel i
  state,
  decode: (i, z) => Array.from(panels[i].decode(z, new Float32Array(PIXELS))),
  code: (i, n) => [panels[i].codes[2 * n], panels[i].codes[2 * n + 1]],
  at: (i, z) => {  // where latent point z of panel i is on the page
    const r = panels[i].scatter.getBoundingClientRect();
    return [r.left + panels[i].px(z[0]), r.top + panels[i].py(z[1])];
  },
  digit: (i) => grey(panels[i].digit),
  original: () => grey(document.getElementById("original")),
  strip: (i) => grey(panels[i].strip),
  frameMs: (i, frames) => {  // one frame: decode a point and paint it; the mean over frames
    const p = panels[i], z = [0, 0], start = performance.now();
    for (let f = 0; f < frames; f++) {
      z[0] = p.x0 + (p.x1 - p.x0) * ((f * 0.618) % 1);
      z[1] = p.y0 + (p.y1 - p.y0) * ((f * 0.382) % 1);
      paint(p.digit, p.decode(z, p.out));
    }
    return (performance.now() - start) / frames;
  },
};
</script>
</body>
</html>
"""
