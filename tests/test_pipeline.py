"""End to end: real `dvc` commands on the whole pipeline, a tiny profile and synthetic data."""

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.e2e import (
    SIGINT_IGNORED,
    STAGES,
    TRAINING,
    check_output,
    clone,
    dvc,
    dvc_stdout,
    lock_outputs,
    make_repo,
    ran,
    restored,
    run,
    write_params,
)
from tests.test_dependencies import invalidated_by
from tools.costs import reruns


def test_first_repro_runs_every_stage(pipeline):
    _, _, output = pipeline
    assert ran(output) == STAGES


def test_every_declared_output_exists_and_parses(pipeline):
    repo, _, _ = pipeline
    outs = lock_outputs(repo)
    assert len(outs) >= 25
    for rel in outs:
        check_output(repo / rel)
    report = (repo / "report" / "report.md").read_text()
    for heading in ("## Q1.", "## Q2.", "## Q3.", "## Q4."):
        assert heading in report


def test_reported_test_losses_are_the_last_point_of_each_loss_curve(pipeline):
    """A metric and the curve it ends must come from one evaluation: the VAE's loss draws a
    fresh latent sample per evaluation, so a second pass would report a different number."""
    repo, _, _ = pipeline

    def last_row(rel: str) -> dict[str, str]:
        return list(csv.DictReader((repo / rel).open()))[-1]

    vae, curve = json.loads((repo / "metrics/vae.json").read_text()), last_row("plots/vae/loss.csv")
    for term in ("test_loss", "test_recon", "test_kl"):
        assert vae[term] == pytest.approx(float(curve[term]), rel=1e-5), term
    ae, curve = json.loads((repo / "metrics/ae/seed_1.json").read_text()), last_row("plots/ae/seed_1/loss.csv")
    assert ae["test_mse"] == pytest.approx(float(curve["test_loss"]), rel=1e-5)


def test_no_temporary_files_are_left(pipeline):
    repo, _, _ = pipeline
    assert not [p for p in repo.rglob(".*.tmp") if ".git" not in p.parts]


def test_metrics_and_plots_commands_work(pipeline):
    repo, env, _ = pipeline
    metrics = json.loads(dvc(repo, env, "metrics", "show", "--json"))
    (workspace,) = metrics.values()  # keyed "" (the workspace) by dvc 3
    files = workspace["data"]
    assert {"metrics/pca.json", "metrics/sweep.json", "metrics/vae.json", "metrics/ae/seed_1.json"} <= set(files)
    # Curves declared as metrics would turn `dvc metrics diff` into whole CSV files per cell.
    assert all(f.startswith("metrics/") and f.endswith(".json") for f in files), sorted(files)
    plots = json.loads(dvc_stdout(repo, env, "plots", "show", "--json"))
    assert not plots.get("errors")
    assert "Reconstruction error vs latent size" in plots["data"]


def test_a_second_run_from_scratch_gives_identical_bytes(pipeline, tmp_path):
    repo, _, _ = pipeline
    other = tmp_path / "again"
    env = make_repo(other, tmp_path / "mirror")
    dvc(other, env, "repro")
    assert (other / "dvc.lock").read_text() == (repo / "dvc.lock").read_text()


def test_pull_in_a_fresh_clone_restores_every_output(pipeline, tmp_path):
    repo, env, _ = pipeline
    copy = clone(pipeline, tmp_path / "clone")
    for rel, md5 in lock_outputs(repo).items():
        check_output(copy / rel)
        assert lock_outputs(copy)[rel] == md5
    assert ran(dvc(copy, env, "repro")) == set()


def test_a_git_clone_alone_shows_the_report_with_every_figure(pipeline, tmp_path):
    """Figures, curves and metrics are in git: no `dvc pull` is needed to read the report."""
    repo = clone(pipeline, tmp_path / "clone", pull=False)
    report = repo / "report" / "report.md"
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report.read_text())
    assert len(links) >= 10
    for link in links:
        assert (report.parent / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", link
    assert not (repo / "models").exists()  # checkpoints stay in DVC


def test_another_data_set_reruns_every_stage_and_returning_restores_them_from_the_run_cache(pipeline):
    """Params A (the pipeline's own run), then B (Fashion-MNIST: every stage reruns on the
    other files), then A again: the third run trains nothing and restores the first run's
    bytes, the data included. The report's Markdown and the explorer's page are plain outputs
    kept in git, which DVC cannot run-cache; they are rebuilt, in seconds, from the restored
    results. A data set the pipeline does not know fails before any work, naming the choices."""
    repo, env, _ = pipeline
    first = lock_outputs(repo)
    original = (repo / "params.yaml").read_text()
    try:
        write_params(repo, lambda p: p.update(dataset="fashion-mnist"))
        assert ran(dvc(repo, env, "repro")) == STAGES
        diff = json.loads(dvc_stdout(repo, env, "metrics", "diff", "--json"))  # workspace vs HEAD
        assert diff["metrics/pca.json"]["test_mse"]["diff"] != 0
        assert "on fashion-mnist" in (repo / "report" / "report.md").read_text()
        write_params(repo, lambda p: p.update(dataset="imagenet"))
        done = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=repo, env=env, capture_output=True, text=True)
        assert done.returncode != 0
        assert "error: dataset must be one of mnist | fashion-mnist, got 'imagenet'" in done.stderr
    finally:
        (repo / "params.yaml").write_text(original)
    start = time.perf_counter()
    output = dvc(repo, env, "repro")
    print(f"A again, restored from the run cache: {time.perf_counter() - start:.1f} s")
    assert ran(output) == {"report", "explorer"}
    assert restored(output) == STAGES - {"report", "explorer"}
    assert lock_outputs(repo) == first
    assert not run(["git", "status", "--porcelain"], repo, env)  # every file in git is as committed


# pca.py reaches a model's fit, its figures and the pages; study_code.py three readers of the
# study's code. A module that reaches more stages proves no more and costs more: plots.py, then
# eleven stages, took over a minute.
@pytest.mark.parametrize("module", ["pca.py", "study_code.py"])
def test_a_library_change_reruns_exactly_the_stages_that_import_it(pipeline, tmp_path, module):
    """An edit to a library module reruns every stage whose import closure holds it, and no
    other: the outputs of the rerun stages are the same bytes, so nothing downstream moves."""
    repo, env = clone(pipeline, tmp_path / "clone"), pipeline[1]
    path = repo / "stages" / "lib" / module
    path.write_text(path.read_text() + "\n# an edit that changes no behaviour\n")
    expected = {s for s in STAGES if s.split("@")[0] in invalidated_by()[f"stages/lib/{module}"]}
    assert expected and ran(dvc(repo, env, "repro")) == expected


def test_caching_reruns_only_what_changed(pipeline, tmp_path):
    repo = clone(pipeline, tmp_path / "clone")
    env = pipeline[1]
    assert ran(dvc(repo, env, "repro")) == set()

    # What a figure shows (its grid, the samples drawn) redraws it and retrains nothing, and
    # reruns no more than the README's costs table says: stages that read the group's keys, and
    # of those downstream only some. Two sizes in a row: DVC's run cache once took a new size for the
    # last one (treeverse/dvc#10296).
    table = reruns(repo)
    for group, key, value, row in (
        ("latent_grid", "cells", 5, "`latent_grid.*`"),
        ("latent_grid", "cells", 6, "`latent_grid.*`"),
        ("prior_grid", "cells", 5, "`prior_grid.*`"),
        ("sample", "count", 4, "`sample.count`"),
    ):
        write_params(repo, lambda p, group=group, key=key, value=value: p[group].update({key: value}))
        rerun = ran(dvc(repo, env, "repro"))
        print(f"{group}.{key}={value} reran {sorted(rerun)}")
        read, downstream = table[row]
        assert rerun & set(read) and rerun <= set(read + downstream), (row, sorted(rerun))
        assert not {s.split("@")[0] for s in rerun} & TRAINING
    assert rerun == {"sample"}  # the table's example: no later stage reads the samples' figure

    write_params(repo, lambda p: p["vae"].update(epochs=2))
    expected = {"train_vae", "vae_figures", "ae_vs_vae", "sample", "judge", "train_fresh", "robustness", "report",
                "explorer"}  # fmt: skip
    assert ran(dvc(repo, env, "repro")) == expected

    write_params(repo, lambda p: p["ae"].update(seeds=[1, 2, 3]))
    rerun = {"train_ae@3", "ae_figures@3", "ae_vs_vae", "judge", "robustness", "report", "explorer"}
    assert ran(dvc(repo, env, "repro")) == rerun

    # Without any DVC cache or remote, `dvc plots diff` compares the figures and curves of
    # the workspace with HEAD's, which git holds.
    shutil.rmtree(repo / ".dvc" / "cache")
    dvc(repo, env, "remote", "remove", "store")
    diff = json.loads(dvc_stdout(repo, env, "plots", "diff", "HEAD", "--json", "--targets", "plots/vae"))
    assert not diff.get("errors")
    latent = diff["data"]["plots/vae/latent.png"]
    assert {r["revisions"][0] for r in latent} == {"HEAD", "workspace"}
    images = [Path(r["url"]).read_bytes() for r in latent]
    assert images[0] != images[1]
    rows = diff["data"]["plots/vae/loss.csv"][0]["content"]["data"]["values"]
    assert sorted(r["rev"] for r in rows) == ["HEAD", "workspace", "workspace"]  # one epoch, then two


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="needs Debian's chromium (CI installs it)")
def test_plots_render_in_a_browser_with_no_network(pipeline, tmp_path):
    """`dvc plots show` writes a page that carries Vega itself: headless Chromium, with every
    host unresolvable and a dead proxy, draws the error-vs-latent-size curve as SVG marks."""
    repo, env, _ = pipeline
    out = tmp_path / "page"
    dvc(repo, env, "plots", "show", "-o", str(out))
    page = (out / "index.html").read_text()
    assert not re.search(r"<script[^>]+src=", page) and "cdn.jsdelivr" not in page
    done = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
            f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000",
            "--dump-dom", (out / "index.html").as_uri(),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    divs = re.split(r'<div id="', done.stdout)
    (curve,) = [d for d in divs if d.startswith("Reconstruction")]
    marks = re.findall(r'aria-roledescription="line mark"', curve)
    print(f"error-vs-latent-size curve: {len(marks)} line marks drawn")
    assert "<svg" in curve and marks


def test_an_experiment_travels_between_two_clones_through_the_remotes(pipeline, tmp_path):
    """Clone A runs an experiment and pushes it (git remote) and its results (DVC remote, with
    the run cache, `python -m tools.push`); clone B pulls it, applies it and restores its
    outputs: nothing to rerun. Clone C sets the same param by hand: `dvc repro --pull` restores
    the sweep from A's run cache, its curve (kept in git) included, and rebuilds only what DVC
    cannot run-cache; after a plain `dvc push --run-cache`, which leaves that curve out, the
    sweep would run again."""
    repo, env, _ = pipeline
    origin = tmp_path / "origin.git"
    run(["git", "clone", "-q", "--bare", str(repo), str(origin)], tmp_path, env)
    a, b = tmp_path / "a", tmp_path / "b"
    for clone_dir in (a, b):
        run(["git", "clone", "-q", str(origin), str(clone_dir)], tmp_path, env)
    timings = {}

    def timed(name: str, where: Path, *args: str) -> str:
        start = time.perf_counter()
        output = dvc(where, env, *args)
        timings[name] = time.perf_counter() - start
        return output

    timed("A: dvc pull", a, "pull")
    # The sweep's seed: a model (the sweep's autoencoders, DVC-cached) and its metrics, two stages.
    timed("A: dvc exp run", a, "exp", "run", "-S", "sweep.seed=1", "-n", "sweep-1")
    timed("A: dvc exp push", a, "exp", "push", "origin", "sweep-1")
    start = time.perf_counter()
    pushed = run([sys.executable, "-m", "tools.push"], a, env)
    timings["A: python -m tools.push"] = time.perf_counter() - start
    assert re.fullmatch(r"pushed to the DVC remote: \d+ objects, \d+ run-cache entries there\n?", pushed), pushed
    timed("B: dvc exp pull", b, "exp", "pull", "origin", "sweep-1")
    shown = json.loads(dvc_stdout(b, env, "exp", "show", "--json"))
    names = {exp["name"] for commit in shown for exp in commit.get("experiments") or []}
    assert "sweep-1" in names
    timed("B: dvc exp apply", b, "exp", "apply", "sweep-1")
    timed("B: dvc pull", b, "pull")
    assert ran(timed("B: dvc repro", b, "repro")) == set()
    assert yaml.safe_load((b / "params.yaml").read_text())["sweep"]["seed"] == 1
    assert lock_outputs(b) == lock_outputs(a)

    c = tmp_path / "c"
    run(["git", "clone", "-q", str(origin), str(c)], tmp_path, env)
    timed("C: dvc pull --run-cache", c, "pull", "--run-cache")
    write_params(c, lambda p: p["sweep"].update(seed=1))
    rebuilt = ran(timed("C: dvc repro --pull", c, "repro", "--pull"))
    assert "sweep" not in rebuilt and rebuilt <= {"report", "explorer"}, rebuilt
    swept = [path for path in lock_outputs(a) if "sweep" in path]
    assert swept and [lock_outputs(c)[path] for path in swept] == [lock_outputs(a)[path] for path in swept]
    print("; ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()))


def wait_for_training(proc: subprocess.Popen, marker: str) -> str:
    seen = ""
    for line in proc.stderr:
        seen += line
        if marker in line:
            return seen
    raise AssertionError(f"the stage ended before {marker!r}:\n{seen}")


def wait_for_session_to_end(session: int, seconds: float = 60) -> None:
    """Until no process of the session runs (zombies, which whoever adopted them reaps when it
    will, write nothing): DVC may exit while its stage still removes what it wrote, and a fixed
    pause would race a loaded machine."""
    deadline = time.monotonic() + seconds
    while any(not state.startswith("Z") for state in subprocess.run(
        ["ps", "-o", "stat=", "--sid", str(session)], capture_output=True, text=True
    ).stdout.split()):  # fmt: skip
        if time.monotonic() > deadline:
            pytest.fail(f"a process of the interrupted `dvc repro` still ran {seconds} s after it")
        time.sleep(0.1)


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_interrupted_training_leaves_no_output_and_reruns_exactly(pipeline, tmp_path, how):
    repo = clone(pipeline, tmp_path / "clone")
    env = pipeline[1]
    params = yaml.safe_load((repo / "params.yaml").read_text())
    # Long enough to be caught mid-training on any CPU: 400 tiny epochs could all finish before
    # the signal arrived on a fast one, and DVC then exited 0.
    params["vae"]["epochs"] = 10_000
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    outs = [out["path"] for out in yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["train_vae"]["outs"]]
    assert len(outs) >= 3  # checkpoint, metrics, loss curve (its figures are vae_figures')

    # DVC starts with SIGINT ignored, as in a script's `dvc repro &` or under a test run started
    # so; its stage inherits that and must stop all the same. DVC ignores SIGINT itself while a
    # stage runs, so this covers a plain Ctrl-C too.
    launch = SIGINT_IGNORED if how == "SIGINT" else []
    proc = subprocess.Popen(
        [*launch, sys.executable, "-m", "dvc", "repro", "train_vae"],
        cwd=repo,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    wait_for_training(proc, "train_vae: epoch 2/10000")
    if how == "SIGINT":  # Ctrl-C: the whole foreground process group
        os.killpg(proc.pid, signal.SIGINT)
    else:  # the stage alone dies without any chance to clean up
        stage = subprocess.run(["pgrep", "-f", "-s", str(proc.pid), "stages.train_vae"], capture_output=True, text=True)
        for pid in stage.stdout.split():
            os.kill(int(pid), signal.SIGKILL)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"`dvc repro` still ran 60 s after {how}: the stage went on training")
    assert proc.returncode != 0, err
    if how == "SIGINT":
        assert "interrupted: no output written" in err
    wait_for_session_to_end(proc.pid)
    for rel in outs:
        assert not (repo / rel).exists(), f"{rel} exists after {how}"
    assert not [p for p in repo.rglob(".*.tmp") if ".git" not in p.parts]

    # Which stages downstream rerun is test_caching_reruns_only_what_changed's; here the interrupted
    # one, at a length it has not run before (so not from the run cache) and that ends soon.
    params["vae"]["epochs"] = 3
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    assert ran(dvc(repo, env, "repro", "train_vae")) == {"train_vae"}
    interrupted = lock_outputs(repo)
    dvc(repo, env, "repro", "--force", "train_vae")
    assert lock_outputs(repo) == interrupted


def test_queued_experiments_run_in_parallel(pipeline, tmp_path):
    repo = clone(pipeline, tmp_path / "clone")
    env = pipeline[1]
    # How many samples are scored reruns three stages, none of them training: the queue is
    # what is tested here.
    for count in (40, 60):
        dvc(repo, env, "exp", "run", "--queue", "-S", f"sample.score_count={count}", "-n", f"scored-{count}")
    dvc(repo, {**env, "OMP_WAIT_POLICY": "PASSIVE"}, "queue", "start", "-j", "2")  # as the README says
    deadline = time.time() + 600
    while time.time() < deadline:
        status = dvc(repo, env, "queue", "status")
        if "Running" not in status and "Queued" not in status:
            break
        time.sleep(3)
    assert status.count("Success") == 2, status
    shown = json.loads(dvc(repo, env, "exp", "show", "--json"))
    found = {}
    for commit in shown:
        for exp in commit.get("experiments") or []:
            for rev in exp["revs"]:
                data = rev["data"]
                count = data["params"]["params.yaml"]["data"]["sample"]["score_count"]
                found[count] = data["metrics"]["metrics/samples.json"]["data"]["vae"]["confidence"]
    assert set(found) == {40, 60}
    assert found[40] != found[60]
