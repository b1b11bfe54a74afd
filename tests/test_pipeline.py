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

from tests.synthetic import write_mirror

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ["stages", "dvc.yaml", ".dvc/config", ".dvcignore", ".gitignore", "data/mnist.sha256"]
STAGES = {"download", "train_ae@1", "train_ae@2", "pca", "sweep", "train_vae", "classifier", "sample", "report"}
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]


def run(cmd: list[str], cwd: Path, env: dict) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def dvc(repo: Path, env: dict, *args: str) -> str:
    return run([sys.executable, "-m", "dvc", *args], repo, env)


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def make_repo(repo: Path, mirror: Path) -> dict:
    """Copy the pipeline into a new git repository with the tiny params and a synthetic mirror."""
    for rel in PIPELINE:
        src, dst = ROOT / rel, repo / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dst)
    shutil.copy(ROOT / "tests" / "tiny_params.yaml", repo / "params.yaml")
    (repo / "data" / "mnist.sha256").write_text(write_mirror(mirror))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MNIST_MIRROR": str(mirror),
        "DVC_NO_ANALYTICS": "1",
        "PYTHONPATH": "",
    }
    run(["git", "init", "-q"], repo, env)
    commit(repo, env, "pipeline")
    return env


def commit(repo: Path, env: dict, message: str) -> None:
    run(["git", "add", "-A"], repo, env)
    run([*GIT, "commit", "-qm", message], repo, env)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """One full `dvc repro`, committed, and pushed to a local-directory DVC remote."""
    root = tmp_path_factory.mktemp("e2e")
    repo = root / "repo"
    env = make_repo(repo, root / "mirror")
    output = dvc(repo, env, "repro")
    dvc(repo, env, "remote", "add", "-d", "store", str(root / "remote"))
    commit(repo, env, "results")
    dvc(repo, env, "push")
    return repo, env, output


def clone(pipeline, dest: Path) -> Path:
    """A fresh git clone of the results, its outputs pulled from the DVC remote."""
    repo, env, _ = pipeline
    run(["git", "clone", "-q", str(repo), str(dest)], dest.parent, env)
    dvc(dest, env, "pull")
    return dest


def lock_outputs(repo: Path) -> dict[str, str]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", [])}


def check_output(path: Path) -> None:
    assert path.exists(), path
    if path.is_dir():
        children = list(path.iterdir())
        assert children, f"{path} is empty"
        for child in children:
            check_output(child)
    elif path.suffix == ".json":
        assert json.loads(path.read_text())
    elif path.suffix == ".csv":
        rows = list(csv.reader(path.open()))
        assert len(rows) >= 2 and all(len(r) == len(rows[0]) for r in rows)
    elif path.suffix == ".png":
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    elif path.suffix == ".md":
        for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", path.read_text()):
            assert (path.parent / link).is_file(), f"{path} links to missing {link}"
    else:
        assert path.stat().st_size > 0, path


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
    shown = subprocess.run(
        [sys.executable, "-m", "dvc", "plots", "show", "--json"], cwd=repo, env=env, capture_output=True, text=True
    )
    plots = json.loads(shown.stdout)  # stdout only: dvc warns about failed plots on stderr
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


def test_caching_reruns_only_what_changed(pipeline, tmp_path):
    repo = clone(pipeline, tmp_path / "clone")
    env = pipeline[1]
    assert ran(dvc(repo, env, "repro")) == set()

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["vae"]["epochs"] = 2
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    assert ran(dvc(repo, env, "repro")) == {"train_vae", "sample", "report"}

    params["ae"]["seeds"] = [1, 2, 3]
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    assert ran(dvc(repo, env, "repro")) == {"train_ae@3", "report"}


def wait_for_training(proc: subprocess.Popen, marker: str) -> str:
    seen = ""
    for line in proc.stderr:
        seen += line
        if marker in line:
            return seen
    raise AssertionError(f"the stage ended before {marker!r}:\n{seen}")


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_interrupted_training_leaves_no_output_and_reruns_exactly(pipeline, tmp_path, how):
    repo = clone(pipeline, tmp_path / "clone")
    env = pipeline[1]
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["vae"]["epochs"] = 400  # long enough to be caught mid-training
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    outs = [o for o in lock_outputs(repo) if o.startswith(("models/vae", "plots/vae", "metrics/vae"))]

    proc = subprocess.Popen(
        [sys.executable, "-m", "dvc", "repro", "train_vae"],
        cwd=repo,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    wait_for_training(proc, "train_vae: epoch 2/400")
    if how == "SIGINT":  # Ctrl-C: the whole foreground process group
        os.killpg(proc.pid, signal.SIGINT)
    else:  # the stage alone dies without any chance to clean up
        stage = subprocess.run(["pgrep", "-f", "-s", str(proc.pid), "stages.train_vae"], capture_output=True, text=True)
        for pid in stage.stdout.split():
            os.kill(int(pid), signal.SIGKILL)
    proc.stderr.read()
    assert proc.wait(timeout=60) != 0
    time.sleep(0.5)
    for rel in outs:
        assert not (repo / rel).exists(), f"{rel} exists after {how}"
    assert not [p for p in repo.rglob(".*.tmp") if ".git" not in p.parts]

    assert ran(dvc(repo, env, "repro")) == {"train_vae", "sample", "report"}
    interrupted = lock_outputs(repo)
    dvc(repo, env, "repro", "--force", "train_vae")
    assert lock_outputs(repo) == interrupted


def test_queued_experiments_run_in_parallel(pipeline, tmp_path):
    repo = clone(pipeline, tmp_path / "clone")
    env = pipeline[1]
    for epochs in (2, 3):
        dvc(repo, env, "exp", "run", "--queue", "-S", f"vae.epochs={epochs}", "-n", f"vae-{epochs}")
    dvc(repo, env, "queue", "start", "-j", "2")
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
                epochs = data["params"]["params.yaml"]["data"]["vae"]["epochs"]
                found[epochs] = data["metrics"]["metrics/vae.json"]["data"]["test_loss"]
    assert set(found) == {2, 3}
    assert found[2] != found[3]
