"""How small a regression does `make check` catch? Its tolerances against the limits of the check
it replaced, and a catalogue of regressions that it must fail.

    python -m tools.power                       # the tables of docs/reproduction.md, from reference/mnist.json
    python -m tools.power --false-alarms 4000   # and how many faithful reruns would fail (minutes)

Each regression of :data:`CATALOGUE` moves the reference run's outputs as a real regression
would (every autoencoder's test error up 1%, one model's silhouette down 0.02, ...); the check of
the moved run against the reference must fail naming the moved measure
(tests/test_power.py). The table gives per group of measures its measured noise and the number
of differences it rests on, the tolerance of one model and of the group's mean (the smallest
move of every model that fails), and the limit the former check put on the same measure: 4.52
seed-to-seed standard deviations of one study model, where it checked the measure at all.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stages.lib import io, nearcopy, reproduction

REFERENCE = Path("reference/mnist.json")
FORMER_LIMIT = 4.521170372269192  # sqrt(2) z at the former check's Bonferroni level, in seed SDs
# The measures the former check limited (its headline metrics), as per-model table groups.
FORMER = {
    "ae: test_mse", "ae: silhouette", "ae: knn_accuracy", "vae: test_loss", "vae: test_mse", "vae: silhouette",
    "vae: knn_accuracy", "vae: recon_prior_kl", "vae: samples_confidence", "vae: samples_class_entropy",
    "vae: samples_frechet",
}  # fmt: skip


@dataclass(frozen=True)
class Regression:
    name: str
    change: Callable[[nearcopy.Run], nearcopy.Run]
    names: str  # what the check's failure must name: a group, or "model: measure"
    caught: bool = True  # False: smaller than the measured noise allows one model to move


def _table(run: nearcopy.Run, rows, column: str, change) -> nearcopy.Run:
    table = run.table.copy()
    mask = rows(table)
    table.loc[mask, column] = change(table.loc[mask, column].astype(float))
    return nearcopy.Run(table, run.sweep, run.pca)


def _kind(kind: str):
    return lambda t: t["kind"] == kind


def _study(kind: str, seed: int | None = None):
    """The study's model of ``kind`` and ``seed``; all the study's models of ``kind`` without one."""
    return lambda t: (t["kind"] == kind) & (t["source"] == "study") & (seed is None or t["seed"] == seed)


def _sweep(run: nearcopy.Run, column: str, factor: float) -> nearcopy.Run:
    return nearcopy.Run(run.table, run.sweep.assign(**{column: run.sweep[column] * factor}), run.pca)


def _pca(run: nearcopy.Run, key: str, factor: float) -> nearcopy.Run:
    return nearcopy.Run(run.table, run.sweep, {**run.pca, key: run.pca[key] * factor})


def _pca_reconstructions(run: nearcopy.Run, key: str, change: float) -> nearcopy.Run:
    reconstruction = {**run.pca["reconstruction"], key: run.pca["reconstruction"][key] + change}
    return nearcopy.Run(run.table, run.sweep, {**run.pca, "reconstruction": reconstruction})


CATALOGUE = [
    Regression("every AE's test MSE +1%", lambda r: _table(r, _kind("ae"), "test_mse", lambda v: v * 1.01),
               "ae: test_mse"),
    Regression("every sweep test error +3%", lambda r: _sweep(r, "ae_test", 1.03), "sweep: ae_test"),
    Regression("every sweep training error +3%", lambda r: _sweep(r, "ae_train", 1.03), "sweep: ae_train"),
    Regression("the study's AE seed 3: silhouette -0.02",
               lambda r: _table(r, _study("ae", 3), "silhouette", lambda v: v - 0.02),
               "the study ae seed 3: silhouette", caught=False),
    Regression("the study's three AEs: silhouette -0.02 (a slip in train_ae.py)",
               lambda r: _table(r, _study("ae"), "silhouette", lambda v: v - 0.02), "the study's ae: silhouette"),
    Regression("every AE's silhouette -0.02", lambda r: _table(r, _kind("ae"), "silhouette", lambda v: v - 0.02),
               "ae: silhouette"),
    Regression("the study's three AEs: test MSE +0.6% (a slip in train_ae.py)",
               lambda r: _table(r, _study("ae"), "test_mse", lambda v: v * 1.006), "the study's ae: test_mse"),
    Regression("the study's VAE: prior KL of its codes +20%",
               lambda r: _table(r, _study("vae", 0), "recon_prior_kl", lambda v: v * 1.2),
               "the study vae seed 0: recon_prior_kl", caught=False),
    Regression("every VAE's prior KL of its codes +20%",
               lambda r: _table(r, _kind("vae"), "recon_prior_kl", lambda v: v * 1.2), "vae: recon_prior_kl"),
    Regression("the study's VAE: sample confidence -0.03",
               lambda r: _table(r, _study("vae", 0), "samples_confidence", lambda v: v - 0.03),
               "the study vae seed 0: samples_confidence"),
    Regression("the study's AE seed 1: grid classifier confidence -0.05",
               lambda r: _table(r, _study("ae", 1), "grid_confidence", lambda v: v - 0.05),
               "the study ae seed 1: grid_confidence"),
    Regression("every AE's grid classifier confidence -0.05",
               lambda r: _table(r, _kind("ae"), "grid_confidence", lambda v: v - 0.05), "ae: grid_confidence"),
    Regression("the study's classifier: test accuracy -0.3%",
               lambda r: _table(r, _study("classifier", 0), "test_accuracy", lambda v: v - 0.003),
               "the study classifier seed 0: test_accuracy", caught=False),
    Regression("every classifier's test accuracy -0.3%",
               lambda r: _table(r, _kind("classifier"), "test_accuracy", lambda v: v - 0.003),
               "classifier: test_accuracy"),
    Regression("the study's VAE: sample-set gap doubled",
               lambda r: _table(r, _study("vae", 0), "gap_max", lambda v: v * 2), "the study vae seed 0: gap_max"),
    Regression("every VAE's test loss +1%", lambda r: _table(r, _kind("vae"), "test_loss", lambda v: v * 1.01),
               "vae: test_loss"),
    Regression("every AE's 5-NN accuracy -0.01", lambda r: _table(r, _kind("ae"), "knn_accuracy", lambda v: v - 0.01),
               "ae: knn_accuracy"),
    Regression("every VAE's drawn grid one class fewer",
               lambda r: _table(r, _kind("vae"), "drawn_distinct_classes", lambda v: v - 1),
               "vae: drawn_distinct_classes"),
    Regression("every VAE's test MSE +1%", lambda r: _table(r, _kind("vae"), "test_mse", lambda v: v * 1.01),
               "vae: test_mse"),
    Regression("every AE's reconstructions recognised 1 point less",
               lambda r: _table(r, _kind("ae"), "recon_classifier_accuracy", lambda v: v - 0.01),
               "ae: recon_classifier_accuracy", caught=False),
    Regression("PCA's test MSE +0.1%", lambda r: _pca(r, "test_mse", 1.001), "PCA: test_mse"),
    Regression("PCA's reconstructions recognised 3 points less",
               lambda r: _pca_reconstructions(r, "classifier_accuracy", -0.03), "PCA: recon_classifier_accuracy",
               caught=False),
]  # fmt: skip


def named(result: nearcopy.Result) -> set[str]:
    """Everything a failing check names: groups whose mean moved, models' measures beyond tolerance."""
    return {g.group for g in result.failing_groups} | {f"{m.model}: {m.measure}" for m in result.failing_moves}


def reference() -> tuple[dict, nearcopy.Run]:
    ref = io.read_json(REFERENCE)
    return ref, reproduction.run_of(ref)


def table() -> pd.DataFrame:
    """Per group: noise and its number of differences, the tolerance of one model and of the mean,
    the former limit, the ratio."""
    ref, run = reference()
    long = run.long()
    counts = nearcopy.mean_counts(long)
    lim = nearcopy.limits(ref["noise"]["groups"], counts)
    rows = []
    for group, k in long.groupby("group").size().items():
        values = long[long["group"] == group]["value"]
        relative = bool(long[long["group"] == group]["relative"].iloc[0])
        scale = float(np.mean(np.abs(values))) if relative else 1.0  # a relative tolerance in the measure's units
        kind, _, measure = group.partition(": ")
        former = math.nan
        if group in FORMER:
            seeds = run.table[run.table["kind"] == kind][measure]
            former = FORMER_LIMIT * float(seeds.std(ddof=1))
        mean = lim[group].mean * scale
        study = lim.get(nearcopy.STUDY_MEAN + group)
        rows.append({
            "group": group, "models": k, "noise": lim[group].rms * scale, "differences": lim[group].n,
            "one_model": lim[group].model * scale, "mean": mean,
            "study_mean": study.mean * scale if study else math.nan,
            "former": former, "ratio": former / mean if mean > 0 else math.nan,
        })  # fmt: skip
    return pd.DataFrame(rows)


def markdown() -> str:
    def g(x: float) -> str:
        return "-" if not np.isfinite(x) else f"{x:.3g}"

    lines = [
        "| group | models | noise (rms) | its differences | tolerance, one model | tolerance, mean of all | "
        "tolerance, the study's mean | former limit | former / mean |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table().itertuples(index=False):
        former = g(r.former) if np.isfinite(r.former) else "unchecked"
        lines.append(
            f"| {r.group} | {r.models} | {g(r.noise)} | {r.differences} | {g(r.one_model)} | {g(r.mean)} "
            f"| {g(r.study_mean)} | {former} | {g(r.ratio)} |"
        )
    return "\n".join(lines) + "\n"


def budget_that_catches(result: nearcopy.Result, names: str, noise_of: dict) -> float:
    """The false-alarm budget at which the check of ``result`` would name ``names``: the budget
    whose t-quantile (:func:`nearcopy.quantile`) is the one its move reaches on its noise's
    differences. A one-model group (PCA's) is named by either comparison: the first to fail. Not
    for a count, whose mean is limited by net steps, not a t-quantile."""
    if nearcopy.is_count(names):  # a group or "model: measure", both ending in the measure
        raise ValueError(f"{names}: a count's limits are not a t-quantile's, so no budget is read off one")
    counts = {g.group: g.k for g in result.groups}
    lim = nearcopy.limits(noise_of, counts)
    singles, means = nearcopy.comparisons(counts)
    budgets = []
    for move in (m for m in result.moves if f"{m.model}: {m.measure}" == names):
        at = lim[move.group]
        budgets.append(nearcopy.budget_at(abs(move.difference) / at.rms, singles, at.n))
    for group in (g for g in result.groups if g.group == names):
        n = lim[group.group].n
        budgets.append(nearcopy.budget_at(group.units * nearcopy.quantile(nearcopy.FALSE_ALARMS, means, n), means, n))
    return min(budgets)


def catalogue_markdown() -> str:
    """The catalogue's outcomes; for a regression that passes, the false-alarm budget a check
    would need to fail it (beyond 100%, none would)."""
    ref, run = reference()
    noise = ref["noise"]["groups"]
    lines = ["| regression | the check | names |", "|---|---|---|"]
    for reg in CATALOGUE:
        result = nearcopy.compare(run, reg.change(run), noise, len(ref["seeds"]["ae.seeds"]))
        if reg.names in named(result):
            verdict = "fails"
        else:
            budget = budget_that_catches(result, reg.names, noise)
            needs = f"a budget of {_percent(budget)} would fail it" if budget < 1 else "no budget under 100% fails it"
            verdict = f"passes: within the measured noise ({needs})"
        lines.append(f"| {reg.name} | {verdict} | {reg.names} |")
    return "\n".join(lines) + "\n"


def false_alarms(ref: dict, situation: int, trials: int, seed: int = 0) -> float:
    """The share of faithful reruns that fail the check, for a rerun like noise source
    ``situation`` of the reference, taking each source's measured noise as its situation's truth.
    Each trial measures every source again (an rms redrawn from the chi-square on its number of
    differences), combines them as the reference does, and draws the rerun's differences from
    the situation's noise, independent between models (the most single comparisons a rerun can
    fail). Pessimistic where sources differ by chance alone: it takes every measured difference
    between situations as real, and the largest measurement as the truth where the situation
    lacks a group (the AMD run's classifiers).

    A count moves by whole steps, and a source that measured none of its models move has not
    measured a chance of 0: each trial draws each source's chance that one model's count moves
    one step from its Jeffreys posterior on the steps it measured (a sum of squared steps, n *
    rms^2), measures it again on its models, and moves each of the rerun's models one step up or
    down at its situation's chance."""
    rng = np.random.default_rng(seed)
    sources = [s["groups"] for s in ref["noise"]["sources"]]
    counts = nearcopy.mean_counts(reproduction.run_of(ref).long())
    groups = {m: k for m, k in counts.items() if nearcopy.is_whole_group(m)}
    truth = {g: sources[situation].get(g) or max((s[g] for s in sources if g in s), key=lambda v: v["rms"])
             for g in groups}  # fmt: skip
    failed = 0
    for _ in range(trials):
        chance = {id(v): rng.beta(nearcopy.steps_measured(v) + 0.5, v["n"] - nearcopy.steps_measured(v) + 0.5)
                  for s in sources for g, v in s.items() if nearcopy.is_count(g)}  # fmt: skip
        measured = [{g: {**v, "rms": _measured(rng, v, chance.get(id(v)))} for g, v in s.items()} for s in sources]
        lim = nearcopy.limits(nearcopy.combined(measured), counts)
        for group, k in groups.items():
            if nearcopy.is_count(group):
                d = rng.choice([-1.0, 1.0], k) * (rng.random(k) < chance[id(truth[group])])
            else:
                d = rng.standard_normal(k) * truth[group]["rms"]
            study = nearcopy.STUDY_MEAN + group  # any k of the independent draws stand for the study's
            if (
                np.any(np.abs(d) > lim[group].model)
                or abs(d.mean()) > lim[group].mean
                or (study in counts and abs(d[: counts[study]].mean()) > lim[study].mean)
            ):
                failed += 1
                break
    return failed / trials


def _measured(rng: np.random.Generator, noise: dict, chance: float | None) -> float:
    """One source's rms measured again: a count's steps drawn on its models at ``chance``, any
    other's from the chi-square on its differences."""
    n = noise["n"]
    if chance is not None:
        return math.sqrt(rng.binomial(n, chance) / n)
    return noise["rms"] * math.sqrt(rng.chisquare(n) / n)


def share(rate: float, trials: int) -> str:
    """A share of ``trials`` with its binomial standard error. None or all of them is no share of
    0% or 100%: at 95% confidence it is beyond 3 / trials of either end (the rule of three). Below
    1%, two significant digits, so that one failure in thousands does not print as 0.0%."""
    if rate == 0:
        return f"none, under {300 / trials:.2g}%"
    if rate == 1:
        return f"all, over {100 - 300 / trials:.3g}%"
    error = math.sqrt(rate * (1 - rate) / trials)
    return f"{_percent(rate)} +- {_percent(error)}"


def _percent(x: float) -> str:
    return f"{100 * x:.1f}%" if x >= 0.01 else f"{100 * x:.2g}%"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.power", description=__doc__.splitlines()[0])
    parser.add_argument("--false-alarms", type=int, metavar="TRIALS",
                        help="also count the faithful reruns that fail, in TRIALS per noise source")  # fmt: skip
    args = parser.parse_args(argv)
    ref, _ = reference()
    print(f"reference: {reproduction.describe(ref['made_on'])}; noise {ref['noise']['how']}\n")
    print(markdown())
    print(catalogue_markdown())
    for i, source in enumerate(ref["noise"]["sources"] if args.false_alarms else []):
        rate = false_alarms(ref, i, args.false_alarms)
        print(f"false alarms of a rerun like {source['how']}: {share(rate, args.false_alarms)} "
              f"of {args.false_alarms} (budget {100 * nearcopy.FALSE_ALARMS:g}%)")  # fmt: skip


if __name__ == "__main__":
    main()
