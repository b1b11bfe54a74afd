"""The reproduction verdict: which verdicts agree with the reference run, and which headline
metrics moved by more than their run-to-run spread."""

import json
import subprocess
import sys

import pytest

from stages.lib import reproduction, robustness
from stages.lib.reproduction import Headline
from tests.e2e import clone, commit, dvc, ran

VERDICTS = {"a": True, "b": 3, "c": False}


def metrics(**values: float) -> dict[str, Headline]:
    return {name: Headline(v, 0.5, "std over seeds") for name, v in values.items()}


def reference(**values: float) -> dict:
    return reproduction.record("mnist", VERDICTS, metrics(**values))


def counted(agreeing: int, differing: int, fragile: int, beyond: int) -> dict[str, int]:
    return {
        "verdicts_agreeing": agreeing,
        "verdicts_differing": differing,
        "verdicts_differing_but_fragile": fragile,
        "metrics_beyond_spread": beyond,
    }


def test_the_same_run_is_the_reference_itself():
    c = reproduction.Comparison(reference(x=1.0, y=2.0), dict(VERDICTS), metrics(x=1.0, y=2.0))
    assert c.identical and c.agreeing == 3 and not c.moved
    assert c.summary() == counted(agreeing=3, differing=0, fragile=0, beyond=0)
    (line,) = reproduction.verdict_lines(c, "mnist")
    assert line.startswith("This run is the reference run")


def test_differences_are_counted_in_units_of_spread_and_named_beyond_one():
    c = reproduction.Comparison(reference(x=1.0, y=2.0, z=3.0), dict(VERDICTS), metrics(x=1.4, y=2.0, z=2.2))
    assert [(name, units) for name, _, _, units, _ in c.rows()] == [
        ("x", pytest.approx(0.8)), ("y", 0.0), ("z", pytest.approx(1.6))
    ]  # fmt: skip
    assert c.moved == ["z"] and not c.identical and not c.differing_verdicts
    lines = reproduction.verdict_lines(c, "mnist")
    assert lines[0].startswith("3 of 3 verdicts agree") and lines[-1] == "Beyond one unit of run-to-run spread: z."


def test_a_differing_verdict_and_a_missing_metric_are_named():
    ref = reference(x=1.0, gone=5.0)
    c = reproduction.Comparison(ref, {**VERDICTS, "b": 2}, metrics(x=1.0))
    assert c.differing_verdicts == [("b", 3, 2)] and c.agreeing == 2
    assert c.moved == ["gone"]  # a metric this run lacks is never within the spread
    assert "Verdict b differs: 3 in the reference, 2 here (not measured over fresh seeds, so a real difference)." in (
        reproduction.verdict_lines(c, "mnist")
    )


def test_no_reference_says_how_to_make_one():
    c = reproduction.Comparison(None, dict(VERDICTS), metrics(x=1.0))
    assert reproduction.verdict_lines(c, "fashion-mnist") == [
        "No reference for fashion-mnist: `make reference` records this run as one."
    ]
    assert c.summary() == {}


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
    assert study["reproduction"] == counted(agreeing=22, differing=0, fragile=0, beyond=0)
    commit(repo, env, "the tiny run as its own reference")

    path = repo / "reference" / "mnist.json"
    altered = json.loads(path.read_text())
    altered["verdicts"]["pca_deterministic"] = not altered["verdicts"]["pca_deterministic"]
    metric = altered["metrics"]["VAE: test loss"]
    metric["value"] += 3 * metric["unit"]
    path.write_text(json.dumps(altered))
    assert ran(dvc(repo, env, "repro")) == {"report"}

    report = (repo / "report" / "report.md").read_text()
    section = report[report.index("## Reproduction") : report.index("## The study's claims")]
    assert "21 of 22 verdicts agree" in section
    assert section.count("differs:") == 1 and "Verdict pca_deterministic differs" in section
    assert "Beyond one unit of run-to-run spread: VAE: test loss." in section
    assert section.count("**beyond**") == 1
    done = reproduction_command(repo, env, "check")
    assert done.returncode == 1
    assert "Verdict pca_deterministic differs" in done.stdout and "spread: VAE: test loss." in done.stdout
    study = json.loads((repo / "metrics" / "study.json").read_text())
    assert study["reproduction"] == counted(agreeing=21, differing=1, fragile=0, beyond=1)


def test_a_fragile_flip_passes_the_check_and_a_solid_one_fails_it(pipeline, tmp_path):
    """The tiny run as its own reference, then one verdict altered there by hand: a fragile one
    (claim 1, judged on the one triple of the tiny run's four fresh seeds) passes `make check`,
    named as expected variation; a solid one fails it."""
    repo, env = clone(pipeline, tmp_path / "clone"), pipeline[1]
    assert reproduction_command(repo, env, "reference").returncode == 0
    counts = json.loads((repo / "metrics" / "robustness.json").read_text())["claims"]
    labels = robustness.labels(counts, list(counts))
    assert labels["runs_differ_notably"] == "fragile"
    solid = next(key for key, label in labels.items() if label in ("solid", "solid against"))
    path = repo / "reference" / "mnist.json"
    recorded = json.loads(path.read_text())

    def check_with_flipped(key: str) -> subprocess.CompletedProcess:
        altered = json.loads(json.dumps(recorded))
        verdict = altered["verdicts"][key]
        altered["verdicts"][key] = (not verdict) if isinstance(verdict, bool) else verdict + 1
        path.write_text(json.dumps(altered))
        return reproduction_command(repo, env, "check")

    fragile = check_with_flipped("runs_differ_notably")
    assert fragile.returncode == 0, fragile.stdout
    assert (
        "Verdict runs_differ_notably differs" in fragile.stdout and "expected seed-to-seed variation" in fragile.stdout
    )
    failed = check_with_flipped(solid)
    assert (
        failed.returncode == 1 and f"Verdict {solid} differs" in failed.stdout and "a real difference" in failed.stdout
    )

    # The report says it too, and counts the fragile flip apart.
    check_with_flipped("runs_differ_notably")
    assert ran(dvc(repo, env, "repro")) == {"report"}
    report = (repo / "report" / "report.md").read_text()
    assert "expected seed-to-seed variation" in report[: report.index("## The study's claims")]
    study = json.loads((repo / "metrics" / "study.json").read_text())
    assert study["reproduction"]["verdicts_differing_but_fragile"] == 1
