"""Did this run reproduce the reference run? Verdicts must agree; metrics may move within the
run-to-run spread that the study itself measures.

The reference (``reference/<dataset>.json``, kept in git) holds one run's verdicts and headline
metrics, the unit each metric's difference is measured in, and the machine that made it. It is
written on purpose, never by ``dvc repro``:

    python -m stages.lib.reproduction reference   # make reference: record this run as the reference
    python -m stages.lib.reproduction check       # make check: compare this run with it; exit 1 if a verdict differs

A unit is a run-to-run spread: for a measure the study repeats (the autoencoder over its seeds,
the VAE's samples over their sets), the standard deviation over the repeats; for a measure
scored by the image classifier, also the spread over classifiers of other seeds scoring the
same samples (the instrument's own variation); for any other, a stated tolerance. PyTorch
promises no identical bits across CPU models, so another machine's numbers differ in their
last digits, and a seed's training can take another path: a difference of a spread or less
is what another seed would give.

A verdict that differs from the reference's is a failure only where it is not *fragile* over
the fresh seeds of the robustness stage (metrics/robustness.json): a fragile verdict's flip is
expected seed-to-seed variation, and is named as such.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stages.lib import io, robustness

REFERENCE_DIR = Path("reference")
BEYOND = 1.0  # a metric "moved" when it differs by more than one unit of spread


def reference_path(dataset: str) -> Path:
    return REFERENCE_DIR / f"{dataset}.json"


def read_metrics(seeds: tuple[int, ...]) -> dict[str, Any]:
    """The metrics files the headline numbers come from, keyed by their name under metrics/."""
    names = [f"ae/seed_{s}" for s in seeds] + ["pca", "sweep", "vae", "samples", "classifier", "judge", "robustness"]
    return {name: io.read_json(Path(f"metrics/{name}.json")) for name in names}


@dataclass(frozen=True)
class Headline:
    value: float
    unit: float  # one run-to-run spread
    rule: str  # how the unit was found


def _std(values: list[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def headline(m: dict[str, Any], seeds: tuple[int, ...]) -> dict[str, Headline]:
    """The headline metrics of a run and each one's unit of spread, from :func:`read_metrics`."""
    ae = {s: m[f"ae/seed_{s}"] for s in seeds}
    vae, pca, samples, judge = m["vae"], m["pca"], m["samples"], m["judge"]

    def over_seeds(key: str) -> tuple[float, str]:
        return _std([ae[s][key] for s in seeds]), f"std over the {len(seeds)} AE seeds"

    def relative_to_seeds(key: str, value: float) -> tuple[float, str]:
        values = [ae[s][key] for s in seeds]
        cv = _std(values) / abs(float(np.mean(values)))
        return cv * abs(value), f"the AE seeds' relative spread ({100 * cv:.1f}%)"

    def over_sets_and_classifiers(key: str) -> tuple[float, str]:
        sets = samples["vae_sets"].values()
        over_sets, rule = _std([s[key] for s in sets]), f"std over the {len(sets)} sample sets"
        classifiers = m["robustness"]["instrument"]
        if classifiers["classifiers"] < 2:
            return over_sets, rule
        # Independent sources of spread add in variance.
        unit = float(np.hypot(over_sets, classifiers[key]))
        return unit, f"{rule} and the {classifiers['classifiers']} classifiers, in quadrature"

    def relative(tolerance: float, value: float) -> tuple[float, str]:
        return tolerance * abs(value), f"stated tolerance {100 * tolerance:g}%"

    def absolute(tolerance: float) -> tuple[float, str]:
        return tolerance, f"stated tolerance {tolerance:g}"

    rows: list[tuple[str, float, tuple[float, str]]] = []
    for s in seeds:
        rows += [
            (f"AE seed {s}: test MSE", ae[s]["test_mse"], over_seeds("test_mse")),
            (f"AE seed {s}: silhouette", ae[s]["silhouette"], over_seeds("silhouette")),
            (f"AE seed {s}: 5-NN accuracy", ae[s]["knn_accuracy"], over_seeds("knn_accuracy")),
        ]
    kl = judge["reconstructions"]["vae"]["prior_kl"]
    rows += [
        # An exact float64 fit: only rounding differs between machines.
        ("PCA: test MSE", pca["test_mse"], relative(1e-3, pca["test_mse"])),
        ("PCA: silhouette", pca["silhouette"], over_seeds("silhouette")),
        ("sweep: AE elbow", m["sweep"]["elbow"]["ae"] or 0, absolute(1)),
        ("sweep: PCA elbow", m["sweep"]["elbow"]["pca"] or 0, absolute(1)),
        ("VAE: test loss", vae["test_loss"], relative(0.01, vae["test_loss"])),
        ("VAE: test MSE", vae["test_mse"], relative_to_seeds("test_mse", vae["test_mse"])),
        ("VAE: silhouette", vae["silhouette"], over_seeds("silhouette")),
        ("VAE: 5-NN accuracy", vae["knn_accuracy"], over_seeds("knn_accuracy")),
        ("VAE: prior KL of the codes", kl, relative(0.1, kl)),
        ("samples: confidence", samples["vae"]["confidence"], over_sets_and_classifiers("confidence")),
        ("samples: class entropy", samples["vae"]["class_entropy"], over_sets_and_classifiers("class_entropy")),
        ("samples: Frechet distance", samples["vae"]["frechet"], over_sets_and_classifiers("frechet")),
        ("classifier: test accuracy", m["classifier"]["test_accuracy"], absolute(1e-3)),
    ]
    return {name: Headline(float(value), *spread) for name, value, spread in rows}


def machine() -> dict[str, Any]:
    """What made a run, as far as its numbers can depend on it."""
    import torch

    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        info = Path("/proc/cpuinfo").read_text()
        fields = dict(line.split(":", 1) for line in info.split("\n\n")[0].splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        cpu = f"{fields.get('model name', cpu)} (family {fields.get('cpu family')}, model {fields.get('model')})"
        flags = set(fields.get("flags", "").split())
    except OSError:
        pass
    isa = next(
        (name for flag, name in [("amx_tile", "AMX"), ("avx512_bf16", "AVX512-BF16"), ("avx512f", "AVX-512"),
                                 ("avx2", "AVX2")] if flag in flags),
        "unknown",
    )  # fmt: skip
    return {"cpu": cpu, "isa": isa, "threads": len(os.sched_getaffinity(0)), "torch": torch.__version__}


def describe(made_on: dict[str, Any]) -> str:
    return f"{made_on['cpu']}, {made_on['isa']}, {made_on['threads']} threads, torch {made_on['torch']}"


@dataclass(frozen=True)
class Comparison:
    reference: dict[str, Any] | None
    verdicts: dict[str, Any]
    metrics: dict[str, Headline]
    labels: dict[str, str] = field(default_factory=dict)  # each verdict's label over fresh seeds

    @property
    def differing_verdicts(self) -> list[tuple[str, Any, Any]]:
        ref = self.reference["verdicts"]
        keys = sorted(set(ref) | set(self.verdicts))
        return [(k, ref.get(k), self.verdicts.get(k)) for k in keys if ref.get(k) != self.verdicts.get(k)]

    @property
    def failing_verdicts(self) -> list[tuple[str, Any, Any]]:
        """The differing verdicts that are not fragile: a real difference, not a coin's other side."""
        return [d for d in self.differing_verdicts if self.labels.get(d[0]) != "fragile"]

    @property
    def agreeing(self) -> int:
        return len(set(self.reference["verdicts"]) | set(self.verdicts)) - len(self.differing_verdicts)

    def rows(self) -> list[tuple[str, float, float, float, str]]:
        """(metric, reference, this run, difference in units, unit rule) of every headline metric."""
        out = []
        for name, ref in self.reference["metrics"].items():
            now = self.metrics.get(name)
            value = now.value if now else float("nan")
            diff = value - ref["value"]
            units = 0.0 if diff == 0 else abs(diff) / ref["unit"] if ref["unit"] > 0 else float("inf")
            out.append((name, ref["value"], value, units, ref["rule"]))
        return out

    @property
    def moved(self) -> list[str]:
        return [name for name, _, _, units, _ in self.rows() if not units <= BEYOND]

    @property
    def identical(self) -> bool:
        return not self.differing_verdicts and all(units == 0 for *_, units, _ in self.rows())

    def summary(self) -> dict[str, int]:
        """For metrics/study.json, so that `dvc exp show` and `dvc metrics diff` carry it."""
        if self.reference is None:
            return {}
        return {
            "verdicts_agreeing": self.agreeing,
            "verdicts_differing": len(self.differing_verdicts),
            "verdicts_differing_but_fragile": len(self.differing_verdicts) - len(self.failing_verdicts),
            "metrics_beyond_spread": len(self.moved),
        }


def load_reference(dataset: str) -> dict[str, Any] | None:
    path = reference_path(dataset)
    return io.read_json(path) if path.is_file() else None


def record(dataset: str, verdicts: dict[str, Any], metrics: dict[str, Headline]) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "made_on": machine(),
        "verdicts": verdicts,
        "metrics": {k: {"value": h.value, "unit": h.unit, "rule": h.rule} for k, h in metrics.items()},
    }


def verdict_lines(c: Comparison, dataset: str) -> list[str]:
    """The verdict in a few lines of text: the same words in the report and on the terminal."""
    if c.reference is None:
        return [f"No reference for {dataset}: `make reference` records this run as one."]
    made = describe(c.reference["made_on"])
    total = c.agreeing + len(c.differing_verdicts)
    if c.identical:
        return [f"This run is the reference run ({made}): every verdict and headline metric is the same."]
    lines = [f"{c.agreeing} of {total} verdicts agree with the reference run ({made})."]
    for key, ref, now in c.differing_verdicts:
        label = c.labels.get(key, "not measured")
        why = (
            "fragile over fresh seeds, so expected seed-to-seed variation"
            if label == "fragile"
            else f"{label} over fresh seeds, so a real difference"
        )
        lines.append(f"Verdict {key} differs: {ref} in the reference, {now} here ({why}).")
    moved = c.moved
    if moved:
        lines.append(f"Beyond one unit of run-to-run spread: {', '.join(moved)}.")
    else:
        lines.append("Every headline metric is within one unit of run-to-run spread of the reference.")
    return lines


def compare(dataset: str, verdicts: dict[str, Any], m: dict[str, Any], seeds: tuple[int, ...]) -> Comparison:
    """A run's verdicts and metrics files (:func:`read_metrics`) against the data set's reference."""
    labels = robustness.labels(m["robustness"]["claims"], list(verdicts))
    return Comparison(load_reference(dataset), verdicts, headline(m, seeds), labels)


def current(dataset: str, seeds: tuple[int, ...]) -> Comparison:
    """This workspace's run (metrics/ as the last `dvc repro` left it) against the reference."""
    verdicts = io.read_json(Path("metrics/study.json"))["verdicts"]
    return compare(dataset, verdicts, read_metrics(seeds), seeds)


def main(argv: list[str]) -> int:
    from stages.lib import params

    if argv not in (["check"], ["reference"]):
        print("usage: python -m stages.lib.reproduction check | reference", file=sys.stderr)
        return 2
    p = params.load()
    c = current(p.dataset, p.ae.seeds)
    if argv == ["reference"]:
        path = reference_path(p.dataset)
        with io.transaction() as out:
            out.write_json(path, record(p.dataset, c.verdicts, c.metrics))
        print(f"{path}: this run's {len(c.verdicts)} verdicts and {len(c.metrics)} headline metrics")
        return 0
    for line in verdict_lines(c, p.dataset):
        print(line)
    return 1 if c.reference is None or c.failing_verdicts else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
