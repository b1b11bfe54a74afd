from dataclasses import replace
from pathlib import Path

from stages.lib import params, report, reproduction, robustness
from stages.lib.markdown import compare, image, num, table
from stages.lib.report import reseeded_text, share_text
from stages.lib.verdicts import all_verdicts

ROOT = Path(__file__).resolve().parents[1]


def test_compare_names_the_lower_and_the_factor():
    assert compare(0.04, 0.05, "the AE", "PCA", "test MSE") == (
        "The AE's test MSE (0.04) is lower than PCA's (0.05), a factor of 1.25."
    )
    assert compare(3.0, 1.5, "a", "b", "x").startswith("B's x (1.5) is lower than a's (3)")


def test_table_and_numbers():
    assert table(["a", "b"], [[1, 0.123456]]) == "| a | b |\n|---|---|\n| 1 | 0.1235 |\n"
    assert num(None) == "none" and num(7) == "7"
    assert image("plots/x.png", "x") == "![x](../plots/x.png)"


def test_no_false_alarm_in_finitely_many_halvings_is_not_printed_as_zero():
    text = reseeded_text({"splits": 200, "false_alarms": 0})
    assert "a false alarm in 0 of 200 halvings (at most 1.2% at 95%" in text
    assert "fewer than 200 independent" in text


def test_a_pooled_share_never_reads_zero_or_one():
    assert share_text(13, 13) == share_text(0, 11) == ""
    assert share_text(285, 286) == "share above 0.99, "
    assert share_text(134, 286) == "share 0.47, "


def committed(monkeypatch) -> tuple[report.Metrics, list, list]:
    """The committed metrics of the study's run, read as the report stage reads them: real numbers
    for every field, in a second, without running the pipeline."""
    monkeypatch.chdir(ROOT)
    m = report.Metrics.load(params.load())
    verdicts = all_verdicts(m.seeds, m.ae, m.pca, m.sweep, m.rows, m.vae, m.samples, m.judge)
    return m, verdicts, [robustness.standing(v, m.robustness["claims"]) for v in verdicts]


def render(m: report.Metrics, verdicts: list, standings: list) -> str:
    facts = report.summary(m, verdicts, standings)
    seeds = reproduction.seeds_of(m.p)
    reproduced = reproduction.compare(m.p.dataset, facts["verdicts"], reproduction.read_run(), seeds, len(m.seeds))
    return report.markdown(m, verdicts, standings, facts, reproduced)


def test_the_report_prints_the_params_it_ran_with(monkeypatch):
    """After `dvc exp run -S ae.epochs=7 ...` the report says 7 epochs, not the study's 20: every
    number of what the pipeline ran is read from params or metrics, none typed into the prose."""
    m, verdicts, standings = committed(monkeypatch)
    p = m.p
    changed = replace(
        p,
        ae=replace(p.ae, hidden=96, lr=0.0037, epochs=7, batch_size=48),
        latent_grid=replace(p.latent_grid, range=6.5),
        prior_grid=replace(p.prior_grid, cells=5),
        pca=replace(p.pca, fit_images=5000),
    )
    sizes = [3, 4, 5, 6, 7, 8, 9]
    m = replace(m, p=changed, rows=[r for r in m.rows if int(r["latent"]) in sizes])
    text = render(m, verdicts, standings)
    priced = text[text.index("## The study's own procedures, priced") :]
    assert (
        f"`Autoencoder({params.INPUT_DIM}, 96, dim)`, Adam lr 0.0037, `nn.MSELoss`, 7 epochs, "
        "sizes `range(3, 10)`, batches of 48) and the PCA grid's formula" in priced
    )
    assert "@ components` over ±6.5." in priced
    assert "loops over the 5x5 cells" in priced and "its grid is 25 independent samples" in priced
    assert "for the fit on 5000 training images" in priced
    assert "its 7 models are not re-seeded, which would cost 7 more models per seed" in text
    for stale in ("lr 0.001", "20 epochs", "range(2, 21)", "12x12", "±10.", "all training images", "batches of 128)"):
        assert stale not in priced, stale
    assert "19 models" not in text


def test_the_sweeps_sizes_read_as_a_range_only_where_they_are_one():
    assert report.sizes_text([2, 3, 4]) == "`range(2, 5)`"
    assert report.sizes_text([2, 4, 8]) == "2, 4, 8"
    assert report.sizes_text([5]) == "5"


def test_claims_are_named_by_their_rows():
    assert report.claim_numbers([4]) == "4"
    assert report.claim_numbers([14, 15]) == "14 and 15"
    assert report.claim_numbers([8, 9, 10, 11, 12]) == "8 to 12"
    assert report.claim_numbers([1, 3, 5]) == "1, 3 and 5"


def test_the_report_cites_each_claim_by_its_row_in_the_verdict_table(monkeypatch):
    """Reordering the verdicts moves every claim number the prose cites with them."""
    m, verdicts, standings = committed(monkeypatch)
    for order in (1, -1):
        v, s = verdicts[::order], standings[::order]
        row = {x.key: i for i, x in enumerate(v, 1)}
        elbows = report.claim_numbers(
            sorted(row[k] for k in ("ae_elbow_near_10", "pca_elbow_near_15", "pca_elbow_near_10"))
        )
        grids = report.claim_numbers(sorted(row[k] for k in ("vae_grid_more_varied", "vae_grid_smoother")))
        priced = report.priced_section(m, v)
        assert f"verdict {row['ae_separates_better_than_pca']} uses" in priced
        assert f"test curves of verdicts {elbows}." in priced
        assert f"verdicts {grids} give both readings" in priced
        runs = report.claim_numbers([i for i, x in enumerate(s, 1) if x and x.claim and x.claim["design"] == "runs"])
        one_draw = report.claim_numbers([i for i, x in enumerate(s, 1) if x and x.label == "one draw"])
        section = report.robustness_section(m, s)
        assert f"autoencoders for claims {runs}, which" in section
        assert f"The sweep's claims ({one_draw}) rest on" in section
