"""Did this run reproduce the reference run? Its printed verdicts must be ones the study's
procedure prints with fair chance, and its headline metrics must stay within the spread that
the pooled runs measure.

The reference (``reference/<dataset>.json``, kept in git) holds one run's verdicts, each
measured verdict's predictive set (the verdicts the study's procedure prints with three
autoencoders and one VAE, drawn from the pooled runs: ``robustness``), its headline metrics
with their units and limits, and the machine that made it. It is written on purpose, never by
``dvc repro``:

    python -m stages.lib.reproduction reference   # make reference: record this run as the reference
    python -m stages.lib.reproduction check       # make check: compare this run with it; exit 1 on a failure

A rerun fails only where a printed verdict falls outside the reference's set, an exact verdict
differs, or a headline metric moves beyond its limit. A unit is a spread: the standard deviation
over the pooled models (the study's and the fresh ones) of a measure the seeds change, with the
classifiers' own spread in the sample measures; a stated tolerance for the rest (PCA, the sweep's
elbows), whose limit is one unit. The sweep's verdicts rest on one draw: the check names their
flips and leaves the judgement to the elbows. PyTorch promises no identical bits across CPU
models, so another machine's training takes other paths: the limits are what another draw of
seeds would give, within a 5% budget of false alarms measured in ``robustness``.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stages.lib import io, robustness

REFERENCE_DIR = Path("reference")


def reference_path(dataset: str) -> Path:
    return REFERENCE_DIR / f"{dataset}.json"


def read_metrics(seeds: tuple[int, ...]) -> dict[str, Any]:
    """The metrics files the headline numbers come from, keyed by their name under metrics/."""
    names = [f"ae/seed_{s}" for s in seeds] + ["pca", "sweep", "vae", "samples", "classifier", "judge", "robustness"]
    return {name: io.read_json(Path(f"metrics/{name}.json")) for name in names}


@dataclass(frozen=True)
class Headline:
    value: float
    unit: float  # one run-to-run spread, or a stated tolerance
    rule: str  # how the unit was found
    limit: float = 1.0  # how many units it may move before `make check` fails


def headline(m: dict[str, Any], seeds: tuple[int, ...]) -> dict[str, Headline]:
    """The headline metrics of a run, each with its unit and limit, from :func:`read_metrics`."""
    ae = {s: m[f"ae/seed_{s}"] for s in seeds}
    vae, pca, samples, judge, r = m["vae"], m["pca"], m["samples"], m["judge"], m["robustness"]
    pool, spread, limit = r["pool"], r["spread"], r["check"]["metric_limit"]

    def pooled(kind: str, column: str) -> tuple[float, str, float]:
        models = pool["autoencoders"] if kind == "ae" else pool["vaes"]
        return spread[kind][column], f"std over the {models} pooled {kind.upper()}s", limit

    def relative(tolerance: float, value: float) -> tuple[float, str, float]:
        return tolerance * abs(value), f"stated tolerance {100 * tolerance:g}%", 1.0

    def absolute(tolerance: float) -> tuple[float, str, float]:
        return tolerance, f"stated tolerance {tolerance:g}", 1.0

    classifiers = r["instrument"]["classifiers"]
    accuracy = (
        (r["instrument"]["test_accuracy"], f"std over {classifiers} classifiers", limit)
        if classifiers > 1
        else absolute(1e-3)
    )
    rows: list[tuple[str, float, tuple[float, str, float]]] = []
    for s in seeds:
        rows += [
            (f"AE seed {s}: test MSE", ae[s]["test_mse"], pooled("ae", "test_mse")),
            (f"AE seed {s}: silhouette", ae[s]["silhouette"], pooled("ae", "silhouette")),
            (f"AE seed {s}: 5-NN accuracy", ae[s]["knn_accuracy"], pooled("ae", "knn_accuracy")),
        ]
    rows += [
        # An exact float64 fit: only rounding differs between machines.
        ("PCA: test MSE", pca["test_mse"], relative(1e-3, pca["test_mse"])),
        ("PCA: silhouette", pca["silhouette"], relative(1e-3, pca["silhouette"])),
        ("sweep: AE elbow", m["sweep"]["elbow"]["ae"] or 0, absolute(1)),
        ("sweep: PCA elbow", m["sweep"]["elbow"]["pca"] or 0, absolute(1)),
        ("VAE: test loss", vae["test_loss"], pooled("vae", "test_loss")),
        ("VAE: test MSE", vae["test_mse"], pooled("vae", "test_mse")),
        ("VAE: silhouette", vae["silhouette"], pooled("vae", "silhouette")),
        ("VAE: 5-NN accuracy", vae["knn_accuracy"], pooled("vae", "knn_accuracy")),
        ("VAE: prior KL of the codes", judge["reconstructions"]["vae"]["prior_kl"], pooled("vae", "recon_prior_kl")),
        ("samples: confidence", samples["vae"]["confidence"], pooled("vae", "samples_confidence")),
        ("samples: class entropy", samples["vae"]["class_entropy"], pooled("vae", "samples_class_entropy")),
        ("samples: Frechet distance", samples["vae"]["frechet"], pooled("vae", "samples_frechet")),
        ("classifier: test accuracy", m["classifier"]["test_accuracy"], accuracy),
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

    @property
    def differing_verdicts(self) -> list[tuple[str, Any, Any]]:
        ref = self.reference["verdicts"]
        keys = sorted(set(ref) | set(self.verdicts))
        return [(k, ref.get(k), self.verdicts.get(k)) for k in keys if ref.get(k) != self.verdicts.get(k)]

    def judgement(self, key: str) -> str:
        """How the check reads a differing verdict: "within" the reference's predictive set,
        "one draw" (the sweep: left to its elbows), or "outside" (a failure)."""
        if key in robustness.ONE_DRAW:
            return "one draw"
        allowed = self.reference.get("sets", {}).get(key)
        return "within" if allowed is not None and self.verdicts.get(key) in allowed else "outside"

    @property
    def failing_verdicts(self) -> list[tuple[str, Any, Any]]:
        return [d for d in self.differing_verdicts if self.judgement(d[0]) == "outside"]

    @property
    def agreeing(self) -> int:
        return len(set(self.reference["verdicts"]) | set(self.verdicts)) - len(self.differing_verdicts)

    def rows(self) -> list[tuple[str, float, float, float, float, str]]:
        """(metric, reference, this run, difference in units, limit, unit rule) of every headline metric."""
        out = []
        for name, ref in self.reference["metrics"].items():
            now = self.metrics.get(name)
            value = now.value if now else float("nan")
            diff = value - ref["value"]
            units = 0.0 if diff == 0 else abs(diff) / ref["unit"] if ref["unit"] > 0 else float("inf")
            out.append((name, ref["value"], value, units, ref.get("limit", 1.0), ref["rule"]))
        return out

    @property
    def moved(self) -> list[str]:
        return [name for name, _, _, units, limit, _ in self.rows() if not units <= limit]

    @property
    def identical(self) -> bool:
        return not self.differing_verdicts and all(units == 0 for _, _, _, units, _, _ in self.rows())

    @property
    def passes(self) -> bool:
        return self.reference is not None and not self.failing_verdicts and not self.moved

    def summary(self) -> dict[str, int]:
        """For metrics/study.json, so that `dvc exp show` and `dvc metrics diff` carry it."""
        if self.reference is None:
            return {}
        return {
            "verdicts_agreeing": self.agreeing,
            "verdicts_differing": len(self.differing_verdicts),
            "verdicts_outside_the_predictive_set": len(self.failing_verdicts),
            "metrics_beyond_limit": len(self.moved),
        }


def load_reference(dataset: str) -> dict[str, Any] | None:
    path = reference_path(dataset)
    return io.read_json(path) if path.is_file() else None


def record(
    dataset: str, verdicts: dict[str, Any], metrics: dict[str, Headline], claims: dict[str, Any]
) -> dict[str, Any]:
    """A reference: the verdicts, the check's predictive set of each measured one (``claims``:
    metrics/robustness.json's), the headline metrics, the machine."""
    return {
        "dataset": dataset,
        "made_on": machine(),
        "verdicts": verdicts,
        "sets": {key: c["check_set"] for key, c in claims.items()},
        "metrics": {k: asdict(h) for k, h in metrics.items()},
    }


def _shown(outcomes: list) -> str:
    return "{" + ", ".join(str(o) for o in outcomes) + "}"


def verdict_lines(c: Comparison, dataset: str) -> list[str]:
    """The verdict in a few lines of text: the same words in the report and on the terminal."""
    if c.reference is None:
        return [f"No reference for {dataset}: `make reference` records this run as one."]
    made = describe(c.reference["made_on"])
    total = c.agreeing + len(c.differing_verdicts)
    if c.identical:
        return [f"This run is the reference run ({made}): every verdict and headline metric is the same."]
    lines = [f"{c.agreeing} of {total} verdicts agree with the reference run ({made})."]
    sets = c.reference.get("sets")
    if sets is None:
        lines.append("The reference predates predictive sets (`make reference` records them): any flip fails.")
    for key, ref, now in c.differing_verdicts:
        judgement, allowed = c.judgement(key), f" {_shown(sets[key])}" if sets and key in sets else ""
        if judgement == "within":
            why = f"inside the reference's predictive set{allowed}: the study's procedure prints it with fair chance"
        elif judgement == "one draw":
            why = "the sweep's, one draw: its variation is not measured, so the check leaves it to the sweep's elbows"
        else:
            why = f"outside the reference's predictive set{allowed}: a real difference"
        lines.append(f"Verdict {key} differs: {ref} in the reference, {now} here ({why}).")
    moved = c.moved
    if moved:
        lines.append(f"Beyond its limit: {', '.join(moved)}.")
    else:
        lines.append("Every headline metric is within its limit of the reference.")
    return lines


def compare(dataset: str, verdicts: dict[str, Any], m: dict[str, Any], seeds: tuple[int, ...]) -> Comparison:
    """A run's verdicts and metrics files (:func:`read_metrics`) against the data set's reference."""
    return Comparison(load_reference(dataset), verdicts, headline(m, seeds))


def current(dataset: str, seeds: tuple[int, ...]) -> Comparison:
    """This workspace's run (metrics/ as the last `dvc repro` left it) against the reference."""
    verdicts = io.read_json(Path("metrics/study.json"))["verdicts"]
    return compare(dataset, verdicts, read_metrics(seeds), seeds)


def main(argv: list[str]) -> int:
    from stages.lib import params

    if argv not in (["check"], ["reference"]):
        print("usage: python -m stages.lib.reproduction check | reference", file=sys.stderr)
        return 2
    if not Path("models").is_dir():
        # metrics/ is in git: without models, they are the committed run's, not one made here.
        print("Nothing has run in this clone yet (no models/): `make repro` first, then `make check`.")
        return 1
    p = params.load()
    c = current(p.dataset, p.ae.seeds)
    if argv == ["reference"]:
        path = reference_path(p.dataset)
        claims = io.read_json(Path("metrics/robustness.json"))["claims"]
        with io.transaction() as out:
            out.write_json(path, record(p.dataset, c.verdicts, c.metrics, claims))
        print(f"{path}: this run's {len(c.verdicts)} verdicts, their predictive sets and {len(c.metrics)} metrics")
        return 0
    for line in verdict_lines(c, p.dataset):
        print(line)
    return 0 if c.passes else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
