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
