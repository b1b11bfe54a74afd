"""Write the study's report from the pipeline's metrics, tables and figures: first a verdict on
every claim of the study, then its questions Q1-Q4 with every table and figure.

Each section is one function of the metrics; no number in the prose is typed by hand. The
verdicts and a few summary numbers are also written as metrics, so experiments compare on them.

Reads:  params.yaml (dataset, ae, latent_grid, pca, vae, prior_grid, sample, robustness and every
        seed), metrics/ (robustness.json: every claim over the pooled models; models.csv: every
        model's measures), plots/sweep.csv,
        reference/<dataset>.json (the reference run, if any); it links the figure stages' PNGs.
Writes: report/report.md,
        metrics/study.json (the verdicts, how many carry each pooled label, run-to-run
        variation, the study's judgements as numbers, and how many verdicts agree with the
        reference run).
"""

from pathlib import Path

from stages.lib import cli, io, params, report, reproduction, robustness


def main() -> None:
    m = report.Metrics.load(params.load())
    verdicts = m.verdicts()
    standings = [robustness.standing(v, m.robustness["claims"]) for v in verdicts]
    facts = report.summary(m, verdicts, standings)
    run, seeds = reproduction.read_run(), reproduction.seeds_of(m.p)
    reproduced = reproduction.compare(m.p.dataset, facts["verdicts"], run, seeds, len(m.seeds))
    facts["reproduction"] = reproduced.summary()
    with io.transaction() as out:
        out.write_json(Path("metrics/study.json"), facts)
        out.write_text(report.OUT, report.markdown(m, verdicts, standings, facts, reproduced))


if __name__ == "__main__":
    cli.run(main)
