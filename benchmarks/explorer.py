"""The latent-space explorer in headless Chromium: decode time per frame, and the largest
pixel difference between the page's decoders and torch's, over a 9x9 lattice of each view.

A frame is what a pointer move costs: decode one latent point and paint it. Each model runs
``--rounds`` rounds of ``--frames`` frames (performance.now in the page); the table gives the
median and best round. Needs the pipeline's report/explorer.html and models/.

    python -m benchmarks.explorer [--rounds 5] [--frames 200]

Also, with no browser, how far three ways of storing each decoder's 784x512 layer in 16 bits
leave its pixels from torch's over a 25x25 lattice of its view: float16, 16-bit integers per
unit rounded alone, and those integers with the rounding error carried (what the page stores).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from harness.browser import offline_page
from stages.lib import explorer, params
from stages.lib.pca import PCACodec
from stages.lib.reproduction import describe, machine

PAGE = Path("report/explorer.html")


@torch.no_grad()
def storage_errors(models: list[tuple[str, explorer.Model]], views: list[list[float]]) -> None:
    print("| model | float16 | 16-bit, rounded alone | 16-bit, error carried (the page) |")
    print("|---|---|---|---|")
    for (name, model), view in zip(models, views, strict=True):
        if isinstance(model, PCACodec):
            continue
        first, second = explorer.layers(model)
        check = torch.nn.functional.linear(explorer.lattice(view, 2, 25), first.weight.double(), first.bias.double())
        hidden, weight, bias = torch.relu(check), second.weight.double(), second.bias.double()
        want = torch.sigmoid(hidden @ weight.T + bias)
        codes, scale = explorer.quantise(second.weight, explorer.relu_inputs(first, view))
        scale64 = scale.double()
        stored = [
            weight.half().double(),
            torch.round(weight / scale64).clamp(-32767, 32767) * scale64,
            codes.double() * scale64,
        ]
        errors = [float((torch.sigmoid(hidden @ w.T + bias) - want).abs().max()) for w in stored]
        print(f"| {name} | " + " | ".join(f"{e:.2e}" for e in errors) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args()
    print(f"{describe(machine())}; page {PAGE.stat().st_size / 1e6:.2f} MB")
    models = explorer.load_models(Path("."), params.load().ae.seeds)
    views = []
    with torch.no_grad(), offline_page() as browser:
        browser.page.goto(PAGE.resolve().as_uri())
        evaluate = browser.page.evaluate
        assert evaluate("explorer.names") == [name for name, _ in models]
        print("| model | ms per frame, median (best) | largest pixel difference against torch |")
        print("|---|---|---|")
        for i, (name, model) in enumerate(models):
            views.append(evaluate("(i) => explorer.view(i)", i))
            x0, x1, y0, y1 = views[-1]
            points = torch.cartesian_prod(torch.linspace(x0, x1, 9), torch.linspace(y0, y1, 9))  # the whole view
            got = torch.tensor(evaluate("([i, zs]) => zs.map((z) => explorer.decode(i, z))", [i, points.tolist()]))
            worst = float((got - model.decode(points)).abs().max())
            times = [evaluate("([i, n]) => explorer.frameMs(i, n)", [i, args.frames]) for _ in range(args.rounds)]
            print(f"| {name} | {statistics.median(times):.3f} ({min(times):.3f}) | {worst:.2e} |")
        assert not browser.errors and not browser.refused
    storage_errors(models, views)


if __name__ == "__main__":
    main()
