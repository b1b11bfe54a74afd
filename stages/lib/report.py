"""The report's sections, each one function of the pipeline's metrics; no number in the prose is typed by hand."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from stages.lib import io, nearcopy, params, reproduction, robustness
from stages.lib.data import DATASETS
from stages.lib.markdown import compare, image, num, table
from stages.lib.metrics import KNN_K, SAMPLE_QUALITY, elbow, mean_std
from stages.lib.study_code import BATCH, GRID_KEY
from stages.lib.verdicts import STUDY_ELBOWS, Verdict, all_verdicts, mean_code_std

OUT = Path("report/report.md")
SAMPLE_NAMES = ("confidence", "class entropy", "Frechet distance")  # of metrics.SAMPLE_QUALITY, in words
SEPARATION = ["silhouette", f"{KNN_K}-NN accuracy", "code std (z1 / z2)"]


@dataclass(frozen=True)
class Metrics:
    """Everything the report reads, loaded once."""

    p: params.Params
    files: dict  # every metrics file by its name under metrics/
    ae: dict  # seed -> metrics/ae/seed_<s>.json
    pca: dict
    sweep: dict
    rows: list[dict]  # plots/sweep.csv
    vae: dict
    samples: dict
    classifier: dict
    judge: dict
    robustness: dict  # metrics/robustness.json: every claim over the pooled models

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.p.ae.seeds

    def verdicts(self) -> list[Verdict]:
        """Every claim's verdict on this run's metrics."""
        return all_verdicts(self.seeds, self.ae, self.pca, self.sweep, self.rows, self.vae, self.samples, self.judge)

    @classmethod
    def load(cls, p: params.Params) -> Metrics:
        names = [f"ae/seed_{s}" for s in p.ae.seeds]
        names += ["pca", "sweep", "vae", "samples", "classifier", "judge", "robustness"]
        files = {name: io.read_json(Path(f"metrics/{name}.json")) for name in names}
        with Path("plots/sweep.csv").open() as f:
            rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
        return cls(
            p=p,
            files=files,
            ae={s: files[f"ae/seed_{s}"] for s in p.ae.seeds},
            pca=files["pca"],
            sweep=files["sweep"],
            rows=rows,
            vae=files["vae"],
            samples=files["samples"],
            classifier=files["classifier"],
            judge=files["judge"],
            robustness=files["robustness"],
        )


def separation_cells(m: dict) -> list:
    return [m["silhouette"], m["knn_accuracy"], " / ".join(num(s, 3) for s in m["code_std"])]


def summary(m: Metrics, verdicts: list[Verdict], standings: list[robustness.Standing | None]) -> dict:
    """metrics/study.json: each verdict's outcome, and the study's comparisons as numbers."""
    seeds = m.seeds
    runs = {k: mean_std([m.ae[s][k] for s in seeds]) for k in ("test_mse", "silhouette", "knn_accuracy")}
    margins = [(r["pca_test"] - r["ae_test"], int(r["latent"])) for r in m.rows]
    smallest = min(margins)
    ae_code_std = sum(mean_code_std(m.ae[s]) for s in seeds) / len(seeds)
    control, vae_samples = m.samples["ae_control"], m.samples["vae"]
    return {
        "verdicts": {v.key: v.outcome for v in verdicts},
        "verdicts_on_the_study_grid": {v.key: v.on_study_grid for v in verdicts if v.on_study_grid is not None},
        "robustness": robustness.label_counts(standings),
        "ae_runs": runs,
        "ae_over_pca_test_mse_2d": runs["test_mse"]["mean"] / m.pca["test_mse"],
        "smallest_pca_minus_ae_margin": {"size": smallest[1], "value": smallest[0]},
        "vae_over_ae_code_std": mean_code_std(m.vae) / ae_code_std,
        "vae_over_control_confidence": vae_samples["confidence"] / control["confidence"],
        "vae_over_control_frechet": vae_samples["frechet"] / control["frechet"],
    }


def header(m: Metrics) -> str:
    p = m.p
    return (
        f"# The MNIST autoencoder study, reproduced on {p.dataset}\n\n"
        "Written by the `report` stage of `dvc repro` from `metrics/` and `plots/`; nothing is typed by hand. "
        f"Device: {m.vae['device']}. Autoencoder epochs: {p.ae.epochs}; VAE epochs: {p.vae.epochs}. "
        "Errors are mean squared error per pixel, pixels in [0, 1]. Separation metrics are on the "
        f"test set: silhouette by class (-1..1), and accuracy of a {KNN_K}-nearest-neighbour classifier fit on "
        "training codes; code std is the spread of the test codes per axis.\n\n"
    )


def reproduction_section(m: Metrics, c: reproduction.Comparison) -> str:
    """Whether this run reproduced the reference run: the answer, then the groups of measures
    that moved most against their tolerance (a near-copy), or the tests that differ (other seeds)."""
    # The reference names the machine that made it; this run's machine is left out, so that the
    # same numbers give the same bytes on any machine.
    reseeded = m.robustness["check"]["reseeded"]
    text = "## Reproduction\n\n" + " ".join(reproduction.verdict_lines(c, m.p.dataset, reseeded)) + "\n"
    if c.question != "near-copy" or c.identical:
        return text
    r, shown = c.nearcopy, 12
    worst: dict[str, object] = {}
    for move in r.moves:
        if move.group not in worst or move.units > worst[move.group].units:
            worst[move.group] = move
    means: dict[str, nearcopy.GroupMove] = {}  # per group, its mean or the study's models', whichever moved more
    for mean in r.groups:
        group = nearcopy.group_of(mean.group)
        if group not in means or mean.units > means[group].units:
            means[group] = mean
    order = sorted(worst, key=lambda g: -max(worst[g].units, means[g].units))[:shown]

    def cell(units: float) -> str:
        return f"{units:.2f}" + (" **beyond**" if not units <= 1 else "")

    rows = [
        [g, f"{worst[g].model}: {num(worst[g].reference)} -> {num(worst[g].now)}", cell(worst[g].units),
         cell(means[g].units), means[g].k]
        for g in order
    ]  # fmt: skip
    return (
        text + f"\nThe {len(order)} groups of measures (of {len(worst)}) that moved most, each against its "
        "tolerance (1 is the limit): the largest single model's move, and the mean move over the group's models "
        "(or over the study's alone, where they are several of many and moved further). "
        "Tolerances are the largest arithmetic noise measured, with a t-quantile for the number of noise "
        "differences of its size "
        f"and a {100 * nearcopy.FALSE_ALARMS:g}% budget of false alarms, half over single models and half over "
        "the means; the sweep's and PCA's moves are relative.\n\n"
        + table(["group", "largest move", "its units", "mean move (units)", "models"], rows)
    )


# What the study's procedure had for each kind of claim, in words.
STUDY_HAD = {
    "ae": "its {runs} autoencoders",
    "vae": "its one VAE",
    "one_pair": "its first autoencoder's grid and its one VAE",
    "vae_against_each_ae": "its one VAE against each of its {runs} autoencoders",
    "runs": "its {runs} autoencoders together",
}
POOL_UNITS = {
    "ae": "autoencoders",
    "vae": "VAEs",
    "one_pair": "autoencoder-VAE pairs",
    "vae_against_each_ae": "autoencoder-VAE pairs",
    "runs": "sets of {runs} autoencoders",
}


def chance_text(chance: float) -> str:
    """A chance from a handful of draws, never printed as a certainty."""
    return "<1%" if chance < 0.005 else ">99%" if chance > 0.995 else f"{100 * chance:.0f}%"


def outcome_text(outcome: bool | int, runs: int | None) -> str:
    return Verdict("", "", "", "", "", outcome, runs if not isinstance(outcome, bool) else None).text


def pooled_cell(r: robustness.Standing | None, runs: int) -> str:
    """The conclusion from every run pooled: label, share, interval and how many draws."""
    if r is None:
        return "not measured"
    if r.claim is None:
        return {"exact": "*exact*: PCA has no seed", "one draw": "*one draw*: the sweep is not re-seeded"}[r.label]
    c = r.claim
    units = POOL_UNITS[c["design"]].format(runs=runs)
    independent = "" if c["draws"] == c["n"] else f", effectively {c['n']:.0f} independent"
    return (
        f"**{r.label}**: in {c['holds_in']} of {c['draws']} {units}{independent} "
        f"({share_text(c['holds_in'], c['draws'])}95% interval {num(c['low'], 2)} to {num(c['high'], 2)})"
    )


def share_text(holds_in: int, draws: int) -> str:
    """The plug-in share, left out where it would read 0 or 1: a count of every draw or none
    already says it, and the interval is the estimate; 285 of 286 is not a share of 1."""
    if holds_in in (0, draws):
        return ""
    share = holds_in / draws
    shown = num(share, 2)
    if shown in ("0", "1"):
        shown = "below 0.01" if share < 0.5 else "above 0.99"
    return f"share {shown}, "


def printed_cell(v: Verdict, r: robustness.Standing | None, runs: int) -> str:
    """What the study's procedure printed here, and how likely it was to."""
    if r is None or r.claim is None:
        return v.text
    c = r.claim
    likely = ", ".join(outcome_text(o, runs) for o in c["set95"])
    return (
        f"{v.text}, with {STUDY_HAD[c['design']].format(runs=runs)}: {chance_text(r.chance)} likely; "
        f"95% of its runs print: {likely}"
    )


def verdict_section(verdicts: list[Verdict], standings: list[robustness.Standing | None], runs: int) -> str:
    rows = [
        [i, v.claim, pooled_cell(r, runs), printed_cell(v, r, runs), v.measure, v.values, v.rule]
        for i, (v, r) in enumerate(zip(verdicts, standings, strict=True), 1)
    ]
    disagree = [
        f"claim {i} ({v.claim}): the study's procedure printed *{v.text}*, all runs pooled say *{r.label}*"
        for i, (v, r) in enumerate(zip(verdicts, standings, strict=True), 1)
        if robustness.disagrees(v, r)
    ]
    opening = (
        "Where the study's printed verdict and the pooled evidence disagree:\n\n"
        + "".join(f"- {line}\n" for line in disagree)
        if disagree
        else "The study's printed verdicts agree with the pooled evidence wherever it is decisive.\n"
    )
    return (
        "## The study's claims, one verdict each\n\n"
        + opening
        + "\nEach claim of the study's report: first the conclusion from every model the pipeline trained, "
        "pooled (the study's own and the fresh seeds'; see *How solid is each verdict*, below), then what "
        "the study's procedure printed here and how likely that was, then the measure, our values and the "
        "rule. Where the study judged by eye, the measure is the nearest number to what it looked at: the "
        'image classifier stands in for "recognisable" and "clear", the gradient energy of an image (mean '
        'squared difference between neighbouring pixels) for "sharp" against "blurred", and the KL '
        'divergence of a Gaussian fit from N(0, I) for "follows a standard normal".\n\n'
        + table(
            ["#", "the study says", "all runs pooled", "the study's procedure printed here", "measure", "ours", "rule"],
            rows,
        )
    )


def robustness_section(m: Metrics, standings: list[robustness.Standing | None]) -> str:
    """The method behind the pooled conclusions and the study's procedure, and the labels' counts."""
    r, counts, result = m.p.fresh, robustness.label_counts(standings), m.robustness
    pool, instrument = result["pool"], result["instrument"]
    runs = pool["study_runs"]
    numbered = list(enumerate(standings, 1))
    of_runs = claim_numbers([i for i, s in numbered if s and s.claim and s.claim["design"] == "runs"])
    one_draw = claim_numbers([i for i, s in numbered if s and s.label == "one draw"])
    fresh = (
        f"{r.seed_count} fresh seeds ({r.first_seed} to {r.first_seed + r.seed_count - 1}) train "
        f"{r.seed_count} more autoencoders and VAEs with the study's recipes (stage `train_fresh`): the "
        "autoencoder and the VAE of one seed come from separate seed streams, so they share no initial "
        "weights and no batch order, as the study's VAE and autoencoders shared none. Seed s also re-draws "
        f"the VAE's sampling noise, its {len(m.p.sample.seeds)} sets of {m.p.sample.score_count} samples "
        "and its grid as the study's code drew it."
        if r.seed_count
        else "No fresh seeds were trained (`fresh.seed_count: 0`): the pool is the study's own models."
    )
    return (
        "\n## How solid is each verdict\n\n"
        + fresh
        + f" The pool is every model measured alike: {pool['autoencoders']} autoencoders and {pool['vaes']} "
        "VAEs, the study's own included, one row each in [metrics/models.csv](../metrics/models.csv). Each "
        "claim's own rule, the function that decides its verdict above, is applied to every draw of the "
        "models it reads: one autoencoder, one VAE, an autoencoder and a VAE, or "
        f"{runs} autoencoders for claims {of_runs}, which speak of the study's {runs} runs.\n\n"
        "*All runs pooled* gives the share of draws where the rule holds and a Jeffreys 95% interval (the "
        "Beta(1/2, 1/2) prior) on the effective number of independent draws: draws that share a model are "
        "not independent, so it is one draw's variance over the share's, from a two-way random-effects ANOVA "
        f"for the pairs (every autoencoder with every VAE) and a delete-one-model jackknife for the sets of "
        f"{runs}, kept between the disjoint draws and every draw (the disjoint draws where every draw agrees, "
        f"as nothing then measures how much they share). It *holds* when the interval lies above "
        f"{robustness.SOLID_ABOVE} and reaches {robustness.SOLID_REACHES} (Bouthillier et al., MLSys 2021), "
        f"*does not hold* when it lies below {robustness.SOLID_ABOVE}, and is *undetermined* otherwise. *The "
        f"study's procedure* is its design as a distribution: {runs} autoencoders and one VAE, each printable "
        "verdict's chance under the same prior. Where the rule reads a measure per model (a count of runs, "
        f"and the claims on the {runs} runs together), {robustness.SIMULATIONS} study procedures are simulated "
        "from a normal model of the pool's measures, its mean and covariance drawn from their posterior, so a "
        "claim that holds by a wide margin is near-certain to be printed again and one near its threshold is "
        "not; the others use the pool's share (the one VAE against one autoencoder: a mixture over the pool's "
        "VAEs). A verdict that can be printed never gets 0%. Its 95% predictive set is the fewest verdicts, "
        "likeliest first, that cover 95%. PCA's determinism is *exact*: no seed touches it. The sweep's claims "
        f"({one_draw}) rest on *one draw*: its {len(m.rows)} models are not re-seeded, which would cost "
        f"{len(m.rows)} more models per seed.\n\n"
        "`make check` does not read these sets. With the reference's seeds a rerun is a near-copy of the "
        "reference, model by model, within the arithmetic noise measured for each measure (see *Reproduction*, "
        "above); with other seeds its pool is tested against the reference's, and "
        f"{reseeded_text(result['check']['reseeded'])}\n\n"
        f"The image classifier, the instrument behind the sample and grid measures, is the study's own for "
        f"every model; its own spread is measured apart: {instrument['classifiers']} classifiers of "
        "different seeds scoring the study's sample sets differ by a standard deviation of "
        + ", ".join(f"{num(instrument[k], 3)} in {name}" for k, name in zip(SAMPLE_QUALITY, SAMPLE_NAMES, strict=True))
        + ", added to those measures' spread in quadrature.\n\n"
        + "Labels: "
        + ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in counts.items() if n)
        + ".\n\n"
        + image("plots/robustness/spread.png", "each claim's measure over the pooled models against its threshold")
        + "\n"
    )


def reseeded_text(reseeded: dict[str, int]) -> str:
    """The replication test's false alarms out of sample, as a count with its Jeffreys 95% upper
    bound: a 0 from a finite number of halvings is not a rate of zero."""
    n, k = reseeded["splits"], reseeded["false_alarms"]
    high = robustness.jeffreys(k, n)[1]
    return (
        f"between two disjoint halves of this pool's seeds it raised a false alarm in {k} of {n} halvings "
        f"(at most {100 * high:.2g}% at 95%; the halvings share models, so they are fewer than {n} independent "
        "trials)."
    )


EXPLORE = (
    "\n*Interactive:* [explorer.html](explorer.html) (open it from disk; it loads nothing) moves through "
    "these latent spaces and decodes the point under the pointer with the models' own decoders.\n"
)


def q1_section(m: Metrics, facts: dict) -> str:
    p, seeds, ae, runs = m.p, m.seeds, m.ae, facts["ae_runs"]
    best = max(seeds, key=lambda s: ae[s]["silhouette"])
    best_knn = max(seeds, key=lambda s: ae[s]["knn_accuracy"])
    third = (
        f"; the third run (seed {seeds[2]}) is {'the best' if seeds[2] == best else 'not the best'} by silhouette"
        if len(seeds) >= 3
        else ""
    )
    figures = "".join(
        f"\n{image(f'plots/ae/seed_{s}/latent.png', f'AE seed {s} latent')} "
        f"{image(f'plots/ae/seed_{s}/grid.png', f'AE seed {s} grid')}\n"
        for s in seeds
    )
    return (
        f"## Q1. A 2-D autoencoder, trained {len(seeds)} times\n\n"
        f"`Autoencoder({params.INPUT_DIM}, {p.ae.hidden}, {p.ae.latent})`, Adam lr {p.ae.lr}, batch {p.ae.batch_size}, "
        "MSE loss, one run per seed.\n\n"
        + table(
            ["seed", "train MSE", "test MSE", *SEPARATION],
            [[s, ae[s]["train_mse"], ae[s]["test_mse"], *separation_cells(ae[s])] for s in seeds]
            + [["mean ± std", "", *(f"{num(v['mean'])} ± {num(v['std'], 2)}" for v in runs.values()), ""]],
        )
        + f"\n*The study: run 3 separates the clusters best.* Here the best-separated run is seed {best} by "
        f"silhouette ({num(ae[best]['silhouette'])}) and seed {best_knn} by {KNN_K}-NN accuracy "
        f"({num(ae[best_knn]['knn_accuracy'])}){third}. Run-to-run spread of the test MSE is "
        f"{num(runs['test_mse']['std'], 2)} ({num(100 * runs['test_mse']['std'] / runs['test_mse']['mean'], 2)}% "
        "of its mean).\n" + figures + EXPLORE
    )


def q2_section(m: Metrics, facts: dict) -> str:
    p, pca, runs = m.p, m.pca, facts["ae_runs"]
    return (
        f"\n## Q2. PCA with {p.pca.components} components\n\n"
        f"Fit on {'all' if p.pca.fit_images >= params.TRAIN_SIZE else p.pca.fit_images} training images (exact: "
        "scikit-learn's `PCA`). Codes are in standard deviations; the grid decodes "
        f"`mean + z * sqrt(explained_variance) @ components` over ±{num(p.latent_grid.range)}.\n\n"
        + table(
            ["train MSE", "test MSE", "explained variance (per axis)", "total", *SEPARATION],
            [
                [
                    pca["train_mse"],
                    pca["test_mse"],
                    " / ".join(num(r, 3) for r in pca["explained_variance_ratio"]),
                    pca["explained_variance_total"],
                    *separation_cells(pca),
                ]
            ],
        )
        + "\n*The study: the autoencoder reconstructs better than PCA.* "
        + compare(runs["test_mse"]["mean"], pca["test_mse"], "the autoencoder (mean of runs)", "PCA", "test MSE")
        + f" PCA's silhouette is {num(pca['silhouette'])}, the autoencoders' {num(runs['silhouette']['mean'])}.\n"
        + f"\n{image('plots/pca/latent.png', 'PCA latent')} {image('plots/pca/grid.png', 'PCA grid')}\n"
        + EXPLORE
    )


def claim_numbers(numbers: list[int]) -> str:
    """Claims by their rows in the verdict table, in words: "4", "14 and 15", "8 to 12"."""
    if len(numbers) > 2 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{numbers[0]} to {numbers[-1]}"
    *rest, last = [str(n) for n in numbers]
    return f"{', '.join(rest)} and {last}" if rest else last


def verdict_numbers(verdicts: list[Verdict], *keys: str) -> str:
    """The rows of these verdicts in the table, which a change to the verdicts' order moves."""
    row = {v.key: i for i, v in enumerate(verdicts, 1)}
    return claim_numbers(sorted(row[k] for k in keys))


def sizes_text(sizes: list[int]) -> str:
    """The sweep's sizes, as the study's code wrote its own (`range(2, 21)`) where they are a range."""
    if len(sizes) > 1 and sizes == list(range(sizes[0], sizes[-1] + 1)):
        return f"`range({sizes[0]}, {sizes[-1] + 1})`"
    return ", ".join(map(str, sizes))


def priced_section(m: Metrics, verdicts: list[Verdict]) -> str:
    """Where the study's code did something other than its text says, and what it costs.

    A number of the study's own code (its batch of 128, its ``num_batches``) is quoted as that
    code; a number of what this pipeline ran comes from params or metrics."""
    p, fit, small = m.p, m.pca["study_batch_fit"], m.pca["study_batch_fit"]["test_mse"]
    sizes = [int(r["latent"]) for r in m.rows]
    on_train = {k: elbow(sizes, [r[f"{k}_train"] for r in m.rows]) for k in ("ae", "pca")}
    scatter, test_sil = m.judge["pca_scatter_as_study_drew_it"], m.pca["silhouette"]
    grids, cells = m.judge["grids"], p.prior_grid.cells
    # The study's training error: a mean of batch means over its batches of BATCH, the last one short.
    last, batches = params.TRAIN_SIZE % BATCH, math.ceil(params.TRAIN_SIZE / BATCH)
    return (
        "\n## The study's own procedures, priced\n\n"
        "Each fragment of the study's code, set against what its text says it did:\n\n"
        f"- **PCA fit** (Q2): `pca.fit(x_flat)` on `next(iter(data_loader))`, a single batch of {fit['images']} "
        f"images. Fits on random batches of as many images reach a test MSE of {num(small['mean'])} ± "
        f"{num(small['std'], 2)}, against {num(m.pca['test_mse'])} for the fit on "
        f"{'all' if p.pca.fit_images >= params.TRAIN_SIZE else p.pca.fit_images} training images: "
        f"{num(100 * (small['mean'] / m.pca['test_mse'] - 1), 2)}% more error.\n"
        f"- **PCA scatter** (Q2): `plot_pca_latent` stops once `i > num_batches` (100 in the study's code), so it "
        f"drew {scatter['images']} shuffled *training* images, coded by that {fit['images']}-image fit. Their "
        f"silhouette is {num(scatter['silhouette_fit_on_128'])} ({num(scatter['silhouette_full_fit'])} for the "
        f"same images under the full fit), against {num(test_sil)} for the test codes that verdict "
        f"{verdict_numbers(verdicts, 'ae_separates_better_than_pca')} uses.\n"
        "- **Error against latent size** (Q3): `compute_error` and the PCA error both ran over `data_loader`, "
        "the training set, so the study's curves are training errors. Kneedle on the training curves puts the "
        f"elbow at {num(on_train['ae'])} for the autoencoder and {num(on_train['pca'])} for PCA, against "
        f"{num(m.sweep['elbow']['ae'])} and {num(m.sweep['elbow']['pca'])} on the test curves of verdicts "
        f"{verdict_numbers(verdicts, 'ae_elbow_near_10', 'pca_elbow_near_15', 'pca_elbow_near_10')}. "
        f"(Its mean of batch means, over the study's batches of {BATCH} from {params.TRAIN_SIZE} training images, "
        f"weighs the last batch of {last} images as a full one, 1/{batches} of the mean instead of "
        f"{last}/{params.TRAIN_SIZE}: it moves the error by {num(100 * (1 / batches - last / params.TRAIN_SIZE), 1)}% "
        "of that batch's difference from the mean. Its first fragment compares the output with the labels, "
        f"`criterion(output, target)`, which cannot broadcast a batch of {BATCH} against {params.INPUT_DIM} "
        "pixels: the second fragment is the one that ran.)\n"
        f"- **VAE grid** (Q4): `plot_vae_reconstructed` loops over the {cells}x{cells} cells but decodes "
        "`z = torch.randn(1, latent_dim)` in each, never the cell's coordinates: its grid is "
        f"{cells**2} independent samples of the prior. On that grid the VAE's digits are "
        f"{'more' if grids[GRID_KEY]['class_entropy'] > grids['ae']['class_entropy'] else 'not more'}"
        " evenly spread over the classes than on the autoencoder's walk, and neighbouring cells differ by "
        f"{num(grids[GRID_KEY]['neighbour_distance'], 3)} per pixel, against "
        f"{num(grids['vae']['neighbour_distance'], 3)} on the VAE's walk: verdicts "
        f"{verdict_numbers(verdicts, 'vae_grid_more_varied', 'vae_grid_smoother')} give both readings.\n"
        f"- **Checked, as the pipeline runs it**: the sweep's recipe (`Autoencoder({params.INPUT_DIM}, "
        f"{p.ae.hidden}, dim)`, Adam lr {p.ae.lr}, `nn.MSELoss`, {p.ae.epochs} epochs, sizes {sizes_text(sizes)}, "
        f"batches of {p.ae.batch_size}) and the PCA grid's formula `mean + z * sqrt(explained_variance) @ "
        f"components` over ±{num(p.latent_grid.range)}.\n"
    )


def q3_section(m: Metrics, facts: dict) -> str:
    elbow, variance = m.sweep["elbow"], m.sweep["pca_components_for_variance"]
    margin = facts["smallest_pca_minus_ae_margin"]
    needed = " and ".join(
        f"{num(n)} components for {share}% of the variance" if i == 0 else f"{num(n)} for {share}%"
        for i, (share, n) in enumerate(variance.items())
    )
    return (
        "\n## Q3. Reconstruction error against latent size\n\n"
        "An autoencoder (same recipe) and a PCA for every size; errors on the training and the held-out test set.\n\n"
        + table(
            ["latent", "AE train", "AE test", "PCA train", "PCA test"],
            [[int(r["latent"]), r["ae_train"], r["ae_test"], r["pca_train"], r["pca_test"]] for r in m.rows],
        )
        + f"\n*The study: the elbow is near {STUDY_ELBOWS['ae']} for the autoencoder and {STUDY_ELBOWS['pca']} "
        f"for PCA.* Kneedle on the test curves puts it at {num(elbow['ae'])} for the autoencoder and "
        f"{num(elbow['pca'])} for PCA. PCA needs {needed}, far beyond this range. The smallest margin of PCA's "
        f"test MSE over the autoencoder's is {num(margin['value'])}, at size {margin['size']}.\n"
        f"\n{image('plots/sweep/error.png', 'error against latent size')}\n"
    )


def q4_section(m: Metrics, facts: dict) -> str:
    p, vae = m.p, m.vae
    return (
        "\n## Q4. A variational autoencoder\n\n"
        f"`VAE({params.INPUT_DIM}, {p.vae.hidden}, {p.vae.latent})`; loss per image = binary cross-entropy summed "
        "over pixels + KL(q(z|x) || N(0, I)) in closed form (Kingma and Welling 2014, appendix B).\n\n"
        + table(
            ["test loss", "reconstruction", "KL", "test MSE (mean decode)", *SEPARATION],
            [[vae["test_loss"], vae["test_recon"], vae["test_kl"], vae["test_mse"], *separation_cells(vae)]],
        )
        + f"\nThe VAE's mean code std is {num(facts['vae_over_ae_code_std'], 3)} times the autoencoders' "
        "(mean of runs).\n"
        + f"\n{image('plots/vae/latent.png', 'VAE latent')} {image('plots/vae/grid.png', 'VAE grid')}\n"
        + f"\nSide by side (grid over ±{num(p.latent_grid.range)} for the AE, ±{num(p.prior_grid.range)} of the prior "
        f"for the VAE):\n\n{image('plots/ae_vs_vae.png', 'AE vs VAE')}\n" + EXPLORE + grids_section(m)
    )


def grids_section(m: Metrics) -> str:
    grids, seed = m.judge["grids"], m.seeds[0]
    names = {"ae": f"AE walk (seed {seed})", "vae": "VAE walk", GRID_KEY: "VAE as the study drew it"}
    keys = ["distinct_classes", "class_entropy", "neighbour_distance", "class_change_rate", "sharpness_ratio",
            "confidence"]  # fmt: skip
    return (
        "\nThe study's own VAE grid decoded a fresh z ~ N(0, I) in every cell, ignoring the cell's "
        "coordinates (its `plot_vae_reconstructed`), so it shows independent samples, not a walk; the three "
        "grids, left to right, and their measures:\n\n"
        + " ".join(
            [
                image(f"plots/ae/seed_{seed}/grid.png", names["ae"]),
                image("plots/vae/grid.png", names["vae"]),
                image("plots/vae/study_grid.png", names[GRID_KEY]),
            ]
        )
        + "\n\n"
        + table(
            ["grid", *(key.replace("_", " ") for key in keys)],
            [[name, *(grids[k][key] for key in keys)] for k, name in names.items()],
        )
    )


def samples_section(m: Metrics) -> str:
    p, samples, control = m.p, m.samples, m.samples["ae_control"]
    classes = len(DATASETS[p.dataset].classes)
    return (
        "\n### Samples from the prior\n\n"
        f"A small CNN classifier (test accuracy {num(m.classifier['test_accuracy'])}) judges "
        f"{p.sample.score_count} samples per set: mean top-class confidence, entropy of the predicted-class "
        f"histogram (ln {classes} = {num(math.log(classes))} when all {classes} classes are equally common), and the "
        "Frechet distance of its features to the test images (two halves of the test set are "
        f"{num(samples['test_halves_frechet'])} apart). The control decodes z ~ N(0, I) with the autoencoder of "
        f"seed {m.seeds[0]}.\n\n"
        + table(
            ["set", *SAMPLE_NAMES],
            [[name, *(s[k] for k in SAMPLE_QUALITY)] for name, s in samples["vae_sets"].items()]
            + [["VAE, mean of sets", *(samples["vae"][k] for k in SAMPLE_QUALITY)]]
            + [[f"control: AE seed {m.seeds[0]}", *(control[k] for k in SAMPLE_QUALITY)]],
        )
        + "\n"
        + compare(samples["vae"]["frechet"], control["frechet"], "the VAE", "the AE control", "Frechet distance")
        + "\n\n"
        + " ".join(image(f"plots/samples/seed_{s}.png", f"samples seed {s}") for s in p.sample.seeds)
        + f" {image('plots/samples/ae_control.png', 'AE control')}\n"
    )


def markdown(
    m: Metrics,
    verdicts: list[Verdict],
    standings: list[robustness.Standing | None],
    facts: dict,
    reproduced: reproduction.Comparison,
) -> str:
    """The whole report: the reproduction check, the verdicts and their standing over the pooled models,
    then Q1-Q4 and the study's own procedures."""
    sections = [
        header(m),
        reproduction_section(m, reproduced),
        verdict_section(verdicts, standings, len(m.seeds)),
        robustness_section(m, standings),
        q1_section(m, facts),
        q2_section(m, facts),
        q3_section(m, facts),
        q4_section(m, facts),
        samples_section(m),
        priced_section(m, verdicts),
    ]
    return "\n".join(s.rstrip("\n") + "\n" for s in sections)
