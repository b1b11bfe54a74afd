"""The reproduction check: which question the seeds pose (a near-copy or a replication), which
printed verdicts differ and whether their measures explain it, and `make check` end to end."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.e2e import ROOT, clone, commit, dvc, ran, write_params
from stages.lib import nearcopy, params, reproduction
from tests.test_nearcopy import NOISE, PCA, REFERENCE, SWEEP, limit_of, pca_silhouette_flip

VERDICTS = {"ae_separates_better_than_pca": 3, "pca_deterministic": True, "ae_elbow_near_10": False}
SEEDS = {"ae.seeds": [1, 2, 3], "fresh.first_seed": 100}


def comparison(verdicts: dict, result: nearcopy.Result | None = None, question: str = "near-copy"):
    reference = {"made_on": {"cpu": "x", "isa": "AVX2", "threads": 2, "torch": "2"}, "verdicts": VERDICTS,
                 "noise": {"how": "between two paths", "groups": NOISE}}  # fmt: skip
    result = result or nearcopy.compare(REFERENCE, REFERENCE, NOISE, 3)
    return reproduction.Comparison(reference, verdicts, question, nearcopy=result)


def test_the_same_run_is_the_reference_itself():
    c = comparison(dict(VERDICTS))
    assert c.identical and c.passes and c.agreeing == 3
    assert c.summary() == {
        "verdicts_agreeing": 3, "verdicts_differing": 0, "verdicts_unexplained": 0, "measures_beyond_tolerance": 0,
        "group_means_beyond_tolerance": 0, "flips_beyond_the_margin": 0,
    }  # fmt: skip
    (line,) = reproduction.verdict_lines(c, "mnist")
    assert line.startswith("This run is the reference run")


def test_a_printed_verdict_that_flips_near_its_threshold_is_explained():
    c = comparison({**VERDICTS, "ae_separates_better_than_pca": 2}, pca_silhouette_flip(0.5, 0.9))
    assert c.differing_verdicts == [("ae_separates_better_than_pca", 3, 2)]
    assert c.explained("ae_separates_better_than_pca") and not c.unexplained and c.passes
    lines = reproduction.verdict_lines(c, "mnist")
    assert "Verdict ae_separates_better_than_pca differs: 3 in the reference, 2 here (its measures sat within" in (
        " ".join(lines)
    )


def test_a_printed_verdict_without_a_flip_of_its_draws_is_a_real_difference():
    """The rule gave another verdict although no draw of its measures flipped: a changed rule."""
    c = comparison({**VERDICTS, "ae_separates_better_than_pca": 0})
    assert c.unexplained == [("ae_separates_better_than_pca", 3, 0)] and not c.passes
    assert "a real difference" in " ".join(reproduction.verdict_lines(c, "mnist"))


def test_pca_determinism_may_never_differ_and_the_sweeps_verdicts_follow_its_curves():
    c = comparison({**VERDICTS, "pca_deterministic": False})
    assert c.unexplained == [("pca_deterministic", True, False)] and not c.passes
    near = comparison({**VERDICTS, "ae_elbow_near_10": True})
    assert near.explained("ae_elbow_near_10") and near.passes
    sweep = SWEEP.assign(ae_test=SWEEP["ae_test"] * 1.5)
    moved = nearcopy.compare(REFERENCE, nearcopy.Run(REFERENCE.table, sweep, PCA), NOISE, 3)
    far = comparison({**VERDICTS, "ae_elbow_near_10": True}, moved)
    assert not far.explained("ae_elbow_near_10") and not far.passes


def test_the_lines_name_each_model_and_group_beyond_tolerance():
    table = REFERENCE.table.copy()
    table.loc[0, "silhouette"] += 3 * limit_of("ae: silhouette").model
    table.loc[table["kind"] == "vae", "mean_code_std"] += 2 * limit_of("vae: mean_code_std").mean
    c = comparison(dict(VERDICTS), nearcopy.compare(REFERENCE, nearcopy.Run(table, SWEEP, PCA), NOISE, 3))
    text = " ".join(reproduction.verdict_lines(c, "mnist"))
    assert not c.passes and "Beyond tolerance: the study ae seed 1: silhouette" in text
    means = text.split("Mean moves beyond tolerance: ", 1)[1]
    assert "vae: mean_code_std moved by" in means  # the silhouette's mean moved too: 3 tolerances over 13 models
    assert c.summary()["measures_beyond_tolerance"] == 1 and c.summary()["group_means_beyond_tolerance"] >= 1


def test_no_reference_or_no_noise_says_how_to_make_them():
    c = reproduction.Comparison(None, dict(VERDICTS), "no reference")
    assert reproduction.verdict_lines(c, "fashion-mnist") == [
        "No reference for fashion-mnist: `make reference` records this run as one."
    ]
    assert c.summary() == {} and not c.passes
    made = {"cpu": "x", "isa": "AVX2", "threads": 2, "torch": "2"}
    for question, says in (("no noise", "`make noise` measures it"), ("an old reference", "predates the near-copy")):
        c = reproduction.Comparison({"made_on": made, "verdicts": VERDICTS}, dict(VERDICTS), question)
        assert says in reproduction.verdict_lines(c, "mnist")[0] and not c.passes


def test_other_seeds_ask_whether_the_conclusions_replicate(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = REFERENCE
    ref = reproduction.record("mnist", VERDICTS, run, SEEDS, {"how": "x", "groups": NOISE})
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "mnist.json").write_text(json.dumps(ref))
    c = reproduction.compare("mnist", dict(VERDICTS), run, {**SEEDS, "fresh.first_seed": 200}, 3)
    assert c.question == "replication" and c.passes
    lines = reproduction.verdict_lines(c, "mnist", {"splits": 200, "false_alarms": 3})
    assert lines[0].startswith("Other seeds than the reference run's")
    assert "failed 3 of 200 halvings of the pooled seeds" in lines[1]
    assert reproduction.compare("mnist", dict(VERDICTS), run, SEEDS, 3).question == "near-copy"


def test_a_recorded_reference_reads_back_as_the_run_it_was_made_of():
    ref = json.loads(json.dumps(reproduction.record("mnist", VERDICTS, REFERENCE, SEEDS, None)))
    back = reproduction.run_of(ref)
    pd.testing.assert_frame_equal(back.long(), REFERENCE.long())


# Regressions of the code, each as a one-line edit of the pipeline a real slip would make: the
# file, the line as it is, the line as the slip leaves it, and a measure the check must name
# (a swap of the grid's axes, which no measure can see, is the test after this one). The tiny
# classifier scores every synthetic test digit right either way: its slips show in how sure it
# is of the samples it reads.
CODE_REGRESSIONS = {
    "one epoch fewer for the study's autoencoders": (
        "stages/train_ae.py", "Recipe(p.ae.epochs, ", "Recipe(p.ae.epochs - 1, ", "test_mse",
    ),
    "the classifier's learning-rate decay dropped": (
        "stages/classifier.py", ", lr_decay=c.lr_decay)", ")", "samples_confidence",
    ),
    "5% of the classifier's training labels shuffled": (
        "stages/classifier.py",
        "train_classifier(*load_data(device), ",
        "train_classifier(*shuffled(*load_data(device)), ",
        "samples_confidence",
    ),
}  # fmt: skip
# A 5% label shuffle needs a helper in the stage script, added with the regression.
SHUFFLED = """

def shuffled(train, test):
    k = len(train) // 20
    labels = train.labels.clone()
    labels[:k] = labels[:k].roll(1)
    return type(train)(train.images, labels), test
"""


def check_command(repo, env, *args: str) -> subprocess.CompletedProcess:
    """What `make check`, `make reference` and `make noise` run."""
    return subprocess.run([sys.executable, "-m", "tools.check", *args], cwd=repo, env=env, capture_output=True,
                          text=True)  # fmt: skip


def test_make_check_on_the_tiny_pipeline_passes_a_copy_and_names_what_moved(pipeline, tmp_path, monkeypatch):
    from tools import check

    repo, env = clone(pipeline, tmp_path / "clone"), {**pipeline[1], "TMPDIR": str(tmp_path)}
    done = check_command(repo, env, "reference")
    assert done.returncode == 0 and "no arithmetic noise yet" in done.stdout, done.stderr
    done = check_command(repo, env)
    assert done.returncode == 1 and "`make noise` measures it" in done.stdout
    # `make noise`: the study again in a scratch clone, on another arithmetic path than this
    # machine's. A tiny run's few steps barely diverge: its tolerances are all but zero.
    done = check_command(repo, env, "noise", "--train")
    assert done.returncode == 0 and "against the same seeds on" in done.stdout, done.stdout + done.stderr
    assert not list(tmp_path.glob("noise-*")), "the scratch clone outlives the noise it measured"
    assert ran(dvc(repo, env, "repro")) == {"report"}  # the reference is the report's input
    assert "This run is the reference run" in (repo / "report" / "report.md").read_text()
    done = check_command(repo, env)
    assert done.returncode == 0 and "This run is the reference run" in done.stdout, done.stdout
    commit(repo, env, "the tiny run as its own reference")
    # The run's verdicts come from its metrics, not from the report's metrics/study.json, which a
    # `dvc repro` of the stages before the report leaves stale (the next repro rewrites it).
    study = repo / "metrics" / "study.json"
    stale = json.loads(study.read_text())
    stale["verdicts"]["pca_deterministic"] = not stale["verdicts"]["pca_deterministic"]
    study.write_text(json.dumps(stale))
    done = check_command(repo, env)
    assert done.returncode == 0 and "This run is the reference run" in done.stdout, done.stdout

    path = repo / "reference" / "mnist.json"
    recorded = json.loads(path.read_text())
    assert recorded["seeds"]["ae.seeds"] == [1, 2] and "ATEN_CPU_CAPABILITY=" in recorded["noise"]["how"]
    altered = json.loads(path.read_text())
    altered["verdicts"]["pca_deterministic"] = not altered["verdicts"]["pca_deterministic"]
    altered["table"][0]["silhouette"] += 0.5
    path.write_text(json.dumps(altered))
    assert ran(dvc(repo, env, "repro")) == {"report"}
    section = (repo / "report" / "report.md").read_text().split("## Reproduction", 1)[1].split("\n## ", 1)[0]
    assert "Verdict pca_deterministic differs" in section and "a real difference" in section
    assert "Beyond tolerance: the study ae seed 1: silhouette" in section and "**beyond**" in section
    done = check_command(repo, env)
    assert done.returncode == 1 and "Beyond tolerance: the study ae seed 1: silhouette" in done.stdout
    study = json.loads((repo / "metrics" / "study.json").read_text())["reproduction"]
    assert study["verdicts_unexplained"] == 1 and study["measures_beyond_tolerance"] >= 1

    # Real slips of the code fail the check, each naming a measure it moved.
    path.write_text(json.dumps(recorded))
    for regression, (rel, line, slip, measure) in CODE_REGRESSIONS.items():
        code = repo / rel
        original = code.read_text()
        assert original.count(line) == 1, f"{regression}: {line!r} is no longer in {rel}"
        slipped = original.replace(line, slip)
        if "shuffled(" in slip:  # its helper, defined before main() runs
            slipped = slipped.replace("\n\ndef main(", SHUFFLED + "\n\ndef main(", 1)
        code.write_text(slipped)
        dvc(repo, env, "repro", "report")  # what the check reads; the explorer it does not
        done = check_command(repo, env)
        assert done.returncode == 1, f"{regression} passes the check:\n{done.stdout}"
        monkeypatch.chdir(repo)
        moved = check.current(params.load()).nearcopy
        named = {m.measure for m in moved.failing_moves} | {g.group.split(": ")[-1] for g in moved.failing_groups}
        assert measure in named, (regression, sorted(named))
        study = json.loads((repo / "metrics" / "study.json").read_text())["reproduction"]
        assert study["measures_beyond_tolerance"] > 0 and study["group_means_beyond_tolerance"] > 0
        code.write_text(original)

    # Other seeds: another question, pool against pool.
    write_params(repo, lambda p: p["fresh"].update(first_seed=300))
    done = check_command(repo, env)
    assert "Other seeds than the reference run's" in done.stdout, done.stdout


def test_the_grids_axes_swapped_move_no_measure_so_the_check_cannot_see_it():
    """Every measure of a decoded grid reads its cells as a set or as 4-neighbour pairs, which a
    transposition keeps: the grid turns and no measure moves beyond the order of a float32 sum."""
    import torch

    from stages.lib.data import Split
    from stages.lib.judging import Judge
    from stages.lib.models import ClassifierConfig, ImageClassifier

    torch.manual_seed(0)
    cells, images = 5, torch.rand(25, 784)
    judge = Judge.of(ImageClassifier(ClassifierConfig()).eval(), Split(torch.rand(8, 784), torch.zeros(8).long()))
    swapped = images.unflatten(0, (cells, cells)).transpose(0, 1).flatten(0, 1)
    assert not torch.equal(swapped, images)
    assert judge.grid(swapped, cells) == pytest.approx(judge.grid(images, cells), rel=1e-6)
    shifted = images.roll(1, 0)  # not a symmetry of the grid: its neighbours change
    assert judge.grid(shifted, cells)["neighbour_distance"] != pytest.approx(
        judge.grid(images, cells)["neighbour_distance"]
    )


def test_make_check_with_nothing_run_says_so(tmp_path):
    root = reproduction.Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "tools.check"], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root)})  # fmt: skip
    assert done.returncode == 1 and "Nothing has run in this clone yet" in done.stdout


def test_a_run_made_elsewhere_has_its_noise_recorded_in_a_clone_that_ran_nothing(tmp_path, monkeypatch, capsys):
    """`noise RUN` compares RUN with the run the reference holds, in the reference of RUN's data
    set (its own params.yaml says which): a clone of main records it without models of its own."""
    from tools import check

    root = reproduction.Path(__file__).resolve().parents[1]
    workspace, run = tmp_path / "clone", tmp_path / "elsewhere"
    (workspace / "reference").mkdir(parents=True)
    ref = json.loads((root / "reference" / "mnist.json").read_text())
    ref["noise"]["sources"] = ref["noise"]["sources"][:1]  # one measurement so far
    (workspace / "reference" / "mnist.json").write_text(json.dumps(ref))
    there = reproduction.run_of(ref)
    table = there.table.copy()
    table.loc[table["kind"] == "ae", "silhouette"] += 0.003  # every autoencoder, one measure
    for rel in ("metrics", "plots"):
        (run / rel).mkdir(parents=True)
    table.to_csv(run / "metrics" / "models.csv", index=False)
    there.sweep.to_csv(run / "plots" / "sweep.csv", index=False)
    (run / "metrics" / "pca.json").write_text(json.dumps({k: there.pca[k] for k in nearcopy.PCA_MEASURES}))
    (run / "metrics" / "judge.json").write_text(json.dumps({"reconstructions": {"pca": there.pca["reconstruction"]}}))
    (run / "params.yaml").write_text((root / "params.yaml").read_text())
    monkeypatch.chdir(workspace)

    assert check.main(["noise", str(run), "--how", "on another machine"]) == 0
    recorded = json.loads((workspace / "reference" / "mnist.json").read_text())["noise"]
    assert [s["how"] for s in recorded["sources"]][-1] == "on another machine" and len(recorded["sources"]) == 2
    groups = recorded["sources"][-1]["groups"]
    assert groups["ae: silhouette"]["rms"] == pytest.approx(0.003) and groups["ae: test_mse"]["rms"] == 0
    assert recorded["groups"] == nearcopy.combined([s["groups"] for s in recorded["sources"]])

    params_text = (run / "params.yaml").read_text()
    (run / "params.yaml").write_text(params_text.replace("first_seed: 100", "first_seed: 300"))
    assert check.main(["noise", str(run)]) == 2
    assert "ran other seeds than reference/mnist.json's" in capsys.readouterr().err
    assert json.loads((workspace / "reference" / "mnist.json").read_text())["noise"] == recorded


# `make noise`'s run of the scratch study, stood in for by a process that starts another (as DVC
# starts a stage) and waits.
SCRATCH_STUDY = """
import subprocess, sys
stage = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], stdout=subprocess.DEVNULL)
open("stage", "w").write(str(stage.pid))
print("ready", flush=True)
stage.wait()
"""
MAKE_NOISE = """
import sys
from pathlib import Path
from tools import check
check.stop_on_signals()
try:
    check.run_as_group([sys.executable, "-c", sys.argv[2]], cwd=Path(sys.argv[1]), env={})
except KeyboardInterrupt:
    print("stopped", flush=True)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: signal.Signals(s).name)
def test_a_signal_to_make_noise_stops_its_scratch_study_and_every_stage_it_started(tmp_path, signum):
    """The scratch study runs in a session of its own; a Ctrl-C, a kill or a closed terminal
    that stops `make noise` stops it too, down to its stage, and the scratch folder goes (the
    `with` around it unwinds: Python's default for SIGTERM and SIGHUP would die at once)."""
    proc = subprocess.Popen([sys.executable, "-c", MAKE_NOISE, str(tmp_path), SCRATCH_STUDY], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout.readline() == "ready\n"
        stage = int((tmp_path / "stage").read_text())
        proc.send_signal(signum)
        assert proc.stdout.readline() == "stopped\n"
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    deadline = time.monotonic() + 60  # a tenth of the stage's sleep: it did not just end
    while gone(stage) is False and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gone(stage), "the scratch study's stage outlived make noise"


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.parametrize("flags", [["avx512f", "avx2"], ["avx2"]])
def test_make_noise_forces_another_arithmetic_path_than_the_machines_own(flags):
    from tools import check

    forced = check.forced_path(set(flags))
    assert forced["ATEN_CPU_CAPABILITY"] == ("avx2" if "avx512f" in flags else "default")
