"""Did this run reproduce the reference run? The question depends on the seeds.

- **Same seeds** (the reference's study and fresh seeds): a rerun is the same models trained
  through other rounding, so every model must be a near-copy of its counterpart, within the
  arithmetic noise the reference measured (``nearcopy``); a verdict may change only where its
  measure sat within that noise of the rule's threshold.
- **Other seeds**: other models; the question is whether the conclusions replicate, pool
  against pool (``replication``), with a false-alarm rate measured out of sample.

The reference (``reference/<dataset>.json``, kept in git) holds one run's verdicts, its per-model
table, sweep and PCA measures, its seeds, the machine that made it, and the arithmetic noise
of its measures with how and where it was measured. It is written on purpose, never by
``dvc repro``: ``make reference`` and ``make noise`` (``python -m tools.check``).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from stages.lib import io, nearcopy, replication, robustness

REFERENCE_DIR = Path("reference")
SHOWN = 8  # failures named one by one; the rest are counted


def reference_path(dataset: str) -> Path:
    return REFERENCE_DIR / f"{dataset}.json"


def load_reference(dataset: str) -> dict[str, Any] | None:
    path = reference_path(dataset)
    return io.read_json(path) if path.is_file() else None


def seeds_of(p) -> dict[str, Any]:
    """Every seed that picks a model or a draw of the run: equal seeds, the same models."""
    return {
        "ae.seeds": list(p.ae.seeds),
        "vae.seed": p.vae.seed,
        "sweep.seed": p.sweep.seed,
        "classifier.seed": p.classifier.seed,
        "pca.seed": p.pca.seed,
        "sample.seeds": list(p.sample.seeds),
        "fresh.first_seed": p.fresh.first_seed,
        "fresh.seed_count": p.fresh.seed_count,
        "fresh.classifier_count": p.fresh.classifier_count,
    }


def read_run(folder: Path = Path(".")) -> nearcopy.Run:
    """A run's outputs as the check reads them, from a workspace (``folder``)."""
    pca = io.read_json(folder / "metrics/pca.json")
    judge = io.read_json(folder / "metrics/judge.json")
    pca = {k: pca[k] for k in nearcopy.PCA_MEASURES} | {"reconstruction": judge["reconstructions"]["pca"]}
    table = pd.read_csv(folder / "metrics/models.csv")
    return nearcopy.Run(table, pd.read_csv(folder / "plots/sweep.csv"), pca)


def records(table: pd.DataFrame) -> list[dict]:
    """The per-model table as JSON: a model's row without the measures its kind has not."""
    return [{k: v for k, v in row.items() if not pd.isna(v)} for row in table.to_dict(orient="records")]


def run_of(reference: dict[str, Any]) -> nearcopy.Run:
    return nearcopy.Run(pd.DataFrame(reference["table"]), pd.DataFrame(reference["sweep"]), reference["pca"])


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
    # A forced arithmetic path is part of what made the numbers.
    forced = {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS") if k in os.environ}
    out = {"cpu": cpu, "isa": isa, "threads": len(os.sched_getaffinity(0)), "torch": torch.__version__}
    return out | ({"forced": forced} if forced else {})


def describe(made_on: dict[str, Any]) -> str:
    forced = "".join(f", {k}={v}" for k, v in made_on.get("forced", {}).items())
    return f"{made_on['cpu']}, {made_on['isa']}, {made_on['threads']} threads, torch {made_on['torch']}{forced}"


def record(dataset: str, verdicts: dict[str, Any], run: nearcopy.Run, seeds: dict, noise: dict | None) -> dict:
    """A reference: the verdicts, every measure of every model, the seeds, the machine, and the
    arithmetic noise (kept from the last reference of the same seeds, else None)."""
    return {
        "dataset": dataset,
        "made_on": machine(),
        "seeds": seeds,
        "verdicts": verdicts,
        "table": records(run.table),
        "sweep": run.sweep.to_dict(orient="records"),
        "pca": run.pca,
        "noise": noise,
    }


@dataclass(frozen=True)
class Comparison:
    """This run against the reference: the question the seeds pose, and its answer."""

    reference: dict[str, Any] | None
    verdicts: dict[str, Any]
    question: str  # "near-copy", "replication", or why neither can be asked
    nearcopy: nearcopy.Result | None = None
    replication: list[replication.Test] | None = None

    @property
    def differing_verdicts(self) -> list[tuple[str, Any, Any]]:
        ref = self.reference["verdicts"]
        keys = sorted(set(ref) | set(self.verdicts))
        return [(k, ref.get(k), self.verdicts.get(k)) for k in keys if ref.get(k) != self.verdicts.get(k)]

    def explained(self, key: str) -> bool:
        """A near-copy's printed verdict may differ only through measures near their thresholds:
        the sweep's when every sweep measure stayed within tolerance, a pooled claim's when each
        of its flipped draws was near the threshold; PCA's determinism never."""
        r = self.nearcopy
        if key in robustness.EXACT or r is None:
            return False
        if key in robustness.ONE_DRAW:
            return not any(m.group.startswith("sweep") for m in r.failing_moves) and not any(
                g.group.startswith("sweep") for g in r.failing_groups
            )
        claim_flips = [f for f in r.flips if f.claim == key]
        return bool(claim_flips) and all(f.near_threshold for f in claim_flips)

    @property
    def unexplained(self) -> list[tuple[str, Any, Any]]:
        if self.question != "near-copy":
            return []
        return [d for d in self.differing_verdicts if not self.explained(d[0])]

    @property
    def agreeing(self) -> int:
        return len(set(self.reference["verdicts"]) | set(self.verdicts)) - len(self.differing_verdicts)

    @property
    def identical(self) -> bool:
        r = self.nearcopy
        return self.question == "near-copy" and not self.differing_verdicts and all(m.units == 0 for m in r.moves)

    @property
    def passes(self) -> bool:
        if self.question == "near-copy":
            return self.nearcopy.passes and not self.unexplained
        if self.question == "replication":
            return not any(t.fails for t in self.replication)
        return False

    def summary(self) -> dict[str, int]:
        """For metrics/study.json, so that `dvc exp show` and `dvc metrics diff` carry it."""
        if self.reference is None or self.question not in ("near-copy", "replication"):
            return {}
        out = {"verdicts_agreeing": self.agreeing, "verdicts_differing": len(self.differing_verdicts)}
        if self.question == "replication":
            return out | {"replication_tests_failing": sum(t.fails for t in self.replication)}
        r = self.nearcopy
        return out | {
            "verdicts_unexplained": len(self.unexplained),
            "measures_beyond_tolerance": len(r.failing_moves),
            "group_means_beyond_tolerance": len(r.failing_groups),
            "flips_beyond_the_margin": len(r.failing_flips),
        }


def compare(dataset: str, verdicts: dict[str, Any], run: nearcopy.Run, seeds: dict, study_runs: int) -> Comparison:
    """A run (its verdicts, its outputs, its seeds) against the data set's reference."""
    ref = load_reference(dataset)
    if ref is None:
        return Comparison(None, verdicts, "no reference")
    if "table" not in ref:
        return Comparison(ref, verdicts, "an old reference")
    if ref["seeds"] != seeds:
        tests = replication.compare(pd.DataFrame(ref["table"]), run.table, run.pca, study_runs)
        return Comparison(ref, verdicts, "replication", replication=tests)
    if not ref.get("noise"):
        return Comparison(ref, verdicts, "no noise")
    return Comparison(ref, verdicts, "near-copy", nearcopy=nearcopy.compare(run_of(ref), run, ref["noise"]["groups"],
                                                                          study_runs))  # fmt: skip


def _listed(items: list[str]) -> str:
    more = f"; and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return "; ".join(items[:SHOWN]) + more


def _number(x: float) -> str:
    return f"{x:.3g}"


def _times(units: float) -> str:
    return "beyond a tolerance of 0" if units == float("inf") else f"{units:.1f} times its tolerance"


def verdict_lines(c: Comparison, dataset: str, reseeded: dict[str, int] | None = None) -> list[str]:
    """The answer in a few lines of text: the same words in the report and on the terminal.
    ``reseeded``: the replication check's false alarms out of sample (metrics/robustness.json)."""
    if c.reference is None:
        return [f"No reference for {dataset}: `make reference` records this run as one."]
    made = describe(c.reference["made_on"])
    if c.question == "an old reference":
        return [f"The reference of {dataset} ({made}) predates the near-copy check: `make reference` records "
                "this run as one, and `make noise` its arithmetic noise."]  # fmt: skip
    if c.question == "no noise":
        return [f"The reference of {dataset} ({made}) has no measured arithmetic noise: `make noise` measures it."]
    if c.identical:
        return [f"This run is the reference run ({made}): every verdict and every measure is the same."]
    total = c.agreeing + len(c.differing_verdicts)
    lines = []
    if c.question == "replication":
        tests = c.replication
        lines.append(
            f"Other seeds than the reference run's ({made}): the question is whether its conclusions replicate, "
            f"pool against pool, in {len(tests)} tests (Welch's t on each measure's mean, Fisher's exact test on "
            f"each per-model claim's share; a {100 * replication.FALSE_ALARMS:g}% budget of false alarms)."
        )
        if reseeded:
            n, k = reseeded["splits"], reseeded["false_alarms"]
            high = robustness.jeffreys(k, n)[1]
            lines.append(
                f"Out of sample, this check failed {k} of {n} halvings of the pooled seeds against each other "
                f"(at most {100 * high:.2g}% at 95%; the halvings share models)."
            )
        lines.append(f"{c.agreeing} of {total} printed verdicts agree with the reference run.")
        failing = [f"{t.name} ({_number(t.reference)} there, {_number(t.now)} here)" for t in tests if t.fails]
        lines.append(f"Differs beyond chance: {_listed(failing)}." if failing else "No test differs beyond chance.")
        return lines
    r = c.nearcopy
    noise = c.reference["noise"]
    lines.append(
        f"Same seeds as the reference run ({made}): each of {len(r.moves)} measures of every model is compared "
        f"with the same model's, within the arithmetic noise measured {noise['how']}."
    )
    lines.append(f"{c.agreeing} of {total} verdicts agree.")
    for key, ref, now in c.differing_verdicts:
        why = (
            "its measures sat within the noise of the rule's threshold"
            if c.explained(key)
            else "not explained by measures near the rule's threshold: a real difference"
        )
        lines.append(f"Verdict {key} differs: {ref} in the reference, {now} here ({why}).")
    beyond = [
        f"{m.model}: {m.measure} {_number(m.reference)} -> {_number(m.now)} ({_times(m.units)})"
        for m in sorted(r.failing_moves, key=lambda m: -m.units)
    ]
    means = [
        f"{g.group} moved by {_number(g.mean)} on average over {g.k} ({_times(g.units)})"
        for g in sorted(r.failing_groups, key=lambda g: -g.units)
    ]
    flipped = [f"{f.claim} on {f.draw}" for f in r.failing_flips]
    if beyond:
        lines.append(f"Beyond tolerance: {_listed(beyond)}.")
    if means:
        lines.append(f"Mean moves beyond tolerance: {_listed(means)}.")
    if flipped:
        lines.append(f"Flips beyond the rule's margin: {_listed(flipped)}.")
    if not (beyond or means or flipped):
        worst = max(r.moves, key=lambda m: m.units)
        lines.append(
            f"Every measure is within its tolerance (the largest move: {worst.model}'s {worst.measure}, "
            f"{worst.units:.2f} of its tolerance), and {len(r.flips)} of the pool's draws flipped near a threshold."
        )
    return lines
