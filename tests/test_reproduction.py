"""The reproduction verdict: which verdicts agree with the reference run, which fall outside its
predictive sets, and which headline metrics moved beyond their limit."""

import json
import subprocess
import sys

import pytest

from stages.lib import reproduction, robustness
from stages.lib.reproduction import Headline
from tests.e2e import clone, commit, dvc, ran, write_params

VERDICTS = {"a": True, "b": 3, "c": False, "pca_deterministic": True, "ae_elbow_near_10": False}
# The check's sets as metrics/robustness.json gives them: "a" may flip, "b" may drop to 2.
CLAIMS = {"a": {"check_set": [True, False]}, "b": {"check_set": [3, 2]}, "c": {"check_set": [False]}}


def metrics(limit: float = 2.0, **values: float) -> dict[str, Headline]:
    return {name: Headline(v, 0.5, "std over the pooled AEs", limit) for name, v in values.items()}


def reference(**values: float) -> dict:
    return reproduction.record("mnist", VERDICTS, metrics(**values), CLAIMS)


def counted(agreeing: int, differing: int, outside: int, beyond: int) -> dict[str, int]:
    return {
        "verdicts_agreeing": agreeing,
        "verdicts_differing": differing,
        "verdicts_outside_the_predictive_set": outside,
        "metrics_beyond_limit": beyond,
    }


def test_the_same_run_is_the_reference_itself():
    c = reproduction.Comparison(reference(x=1.0, y=2.0), dict(VERDICTS), metrics(x=1.0, y=2.0))
    assert c.identical and c.agreeing == 5 and not c.moved and c.passes
    assert c.summary() == counted(agreeing=5, differing=0, outside=0, beyond=0)
    (line,) = reproduction.verdict_lines(c, "mnist")
    assert line.startswith("This run is the reference run")


def test_a_metric_fails_beyond_its_limit_and_not_at_it():
    c = reproduction.Comparison(reference(x=1.0, y=2.0, z=3.0), dict(VERDICTS), metrics(x=2.0, y=2.0, z=1.99))
    assert [(name, units, limit) for name, _, _, units, limit, _ in c.rows()] == [
        ("x", pytest.approx(2.0), 2.0), ("y", 0.0, 2.0), ("z", pytest.approx(2.02), 2.0)
    ]  # fmt: skip
    assert c.moved == ["z"] and not c.identical and not c.differing_verdicts and not c.passes
    lines = reproduction.verdict_lines(c, "mnist")
    assert lines[0].startswith("5 of 5 verdicts agree") and lines[-1] == "Beyond its limit: z."


@pytest.mark.parametrize(
    ("key", "now", "judgement", "passes"),
    [("a", False, "within", True), ("b", 2, "within", True), ("b", 1, "outside", False), ("c", True, "outside", False),
     ("pca_deterministic", False, "outside", False), ("ae_elbow_near_10", True, "one draw", True)],
)  # fmt: skip
def test_each_kind_of_flip_is_judged_by_its_rule(key, now, judgement, passes):
    """Within the reference's predictive set: passes. Outside it, or an exact verdict: fails. A
    sweep verdict (one draw): named, and left to the sweep's elbows."""
    c = reproduction.Comparison(reference(x=1.0), {**VERDICTS, key: now}, metrics(x=1.0))
    assert c.differing_verdicts == [(key, VERDICTS[key], now)] and c.judgement(key) == judgement
    assert c.passes is passes
    assert c.summary()["verdicts_outside_the_predictive_set"] == (0 if passes else 1)
    (line,) = [line for line in reproduction.verdict_lines(c, "mnist") if line.startswith("Verdict")]
    words = {"within": "inside the reference's predictive set", "outside": "a real difference",
             "one draw": "leaves it to the sweep's elbows"}  # fmt: skip
    assert line.startswith(f"Verdict {key} differs: {VERDICTS[key]} in the reference, {now} here (")
    assert words[judgement] in line


def test_a_mutant_rule_fails_the_check_that_the_studys_own_draws_pass():
    """The check's sets from a pool where every autoencoder reconstructs better than PCA; a rerun
    whose rule is inverted prints 'holds in no run', outside the set."""
    from tests.test_robustness import PCA, mixed_table

    result = robustness.analyse(mixed_table(), PCA, 3, {})
    verdicts = {key: c["set95"][0] for key, c in result["claims"].items()}
    ref = reproduction.record("mnist", verdicts, {}, result["claims"])
    assert reproduction.Comparison(ref, dict(verdicts), {}).passes
    mutant = {**verdicts, "ae_reconstructs_better_than_pca": 0}
    c = reproduction.Comparison(ref, mutant, {})
    assert not c.passes and c.judgement("ae_reconstructs_better_than_pca") == "outside"


def test_an_old_reference_without_sets_fails_any_flip_and_says_why():
    ref = reference(x=1.0)
    del ref["sets"]
    c = reproduction.Comparison(ref, {**VERDICTS, "a": False}, metrics(x=1.0))
    assert not c.passes and any("predates predictive sets" in line for line in reproduction.verdict_lines(c, "mnist"))


def test_no_reference_says_how_to_make_one():
    c = reproduction.Comparison(None, dict(VERDICTS), metrics(x=1.0))
    assert reproduction.verdict_lines(c, "fashion-mnist") == [
        "No reference for fashion-mnist: `make reference` records this run as one."
    ]
    assert c.summary() == {} and not c.passes


def reproduction_command(repo, env, verb: str) -> subprocess.CompletedProcess:
    """What `make check` and `make reference` run."""
    command = [sys.executable, "-m", "stages.lib.reproduction", verb]
    return subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)


def test_the_report_and_the_check_name_exactly_the_verdict_and_the_metric_that_differ(pipeline, tmp_path):
    repo, env = clone(pipeline, tmp_path / "clone"), pipeline[1]
    done = reproduction_command(repo, env, "reference")
    assert done.returncode == 0, done.stderr
    assert ran(dvc(repo, env, "repro")) == {"report"}  # the reference is the report's input
    report = (repo / "report" / "report.md").read_text()
    assert "This run is the reference run" in report
    assert reproduction_command(repo, env, "check").returncode == 0
    study = json.loads((repo / "metrics" / "study.json").read_text())
    assert study["reproduction"] == counted(agreeing=22, differing=0, outside=0, beyond=0)
    commit(repo, env, "the tiny run as its own reference")

    path = repo / "reference" / "mnist.json"
    recorded = json.loads(path.read_text())
    assert set(recorded["sets"]) == set(robustness.DESIGNS)
    altered = json.loads(path.read_text())
    altered["verdicts"]["pca_deterministic"] = not altered["verdicts"]["pca_deterministic"]
    metric = altered["metrics"]["VAE: test loss"]
    metric["value"] += (metric["limit"] + 0.5) * metric["unit"]
    path.write_text(json.dumps(altered))
    assert ran(dvc(repo, env, "repro")) == {"report"}

    report = (repo / "report" / "report.md").read_text()
    section = report[report.index("## Reproduction") : report.index("## The study's claims")]
    assert "21 of 22 verdicts agree" in section
    assert section.count("differs:") == 1 and "Verdict pca_deterministic differs" in section
    assert "Beyond its limit: VAE: test loss." in section and section.count("**beyond**") == 1
    done = reproduction_command(repo, env, "check")
    assert done.returncode == 1
    assert "Verdict pca_deterministic differs" in done.stdout and "Beyond its limit: VAE: test loss." in done.stdout
    study = json.loads((repo / "metrics" / "study.json").read_text())
    assert study["reproduction"] == counted(agreeing=21, differing=1, outside=1, beyond=1)

    # A real change of the recipe: ten times the autoencoder's learning rate fails the check.
    path.write_text(json.dumps(recorded))
    write_params(repo, lambda p: p["ae"].update(lr=10 * p["ae"]["lr"]))
    dvc(repo, env, "repro")
    done = reproduction_command(repo, env, "check")
    assert done.returncode == 1 and "Beyond its limit: AE seed 1: test MSE" in done.stdout, done.stdout


def test_make_check_with_nothing_run_says_so(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "stages.lib.reproduction", "check"], cwd=tmp_path, capture_output=True, text=True,
        env={"PYTHONPATH": str(reproduction.Path(__file__).resolve().parents[1])},
    )  # fmt: skip
    assert done.returncode == 1 and "Nothing has run in this clone yet" in done.stdout
