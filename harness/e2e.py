"""Helpers of the end-to-end tests: the pipeline copied into a temporary git repository with
the tiny params and synthetic data, and real `dvc` and `git` commands run in it."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from harness.synthetic import copy_stages, write_mirror
from stages.lib.params import RECORD_ENV

ROOT = Path(__file__).resolve().parents[1]
# What the pipeline needs besides stages/: the plot page, the plots' Vega-Lite templates, the
# study's reference run (which the tiny runs do not reproduce), the campaign tool and tools.push.
PIPELINE = [
    "dvc.yaml",
    ".dvc/config",
    ".dvcignore",
    ".gitignore",
    ".dvc/plots/offline.html",
    *(f".dvc/plots/{p.name}" for p in sorted((ROOT / ".dvc" / "plots").glob("*.json"))),
    "reference/mnist.json",
    "tools/__init__.py",
    *(f"tools/campaign/{p.name}" for p in sorted((ROOT / "tools" / "campaign").glob("*.py"))),
    "tools/check.py",
    "tools/push.py",
]
STAGES = {
    "download",
    "train_ae@1",
    "train_ae@2",
    "ae_figures@1",
    "ae_figures@2",
    "pca",
    "pca_figures",
    "sweep",
    "train_vae",
    "vae_figures",
    "ae_vs_vae",
    "classifier",
    "sample",
    "judge",
    "train_fresh",
    "robustness",
    "report",
    "explorer",
}
# The stages that train or fit a model: a change to what a figure shows must rerun none.
TRAINING = {"train_ae", "pca", "sweep", "train_vae", "classifier", "train_fresh"}
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
# A command prefix that starts the command with SIGINT ignored, as a script's `cmd &` job (no
# job control) and everything it starts are: the disposition survives exec.
SIGINT_IGNORED = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); os.execvp(sys.argv[1], sys.argv[1:])",
]


def run(cmd: list[str], cwd: Path, env: dict) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def dvc(repo: Path, env: dict, *args: str) -> str:
    return run([sys.executable, "-m", "dvc", *args], repo, env)


def dvc_stdout(repo: Path, env: dict, *args: str) -> str:
    """stdout alone (DVC writes its warnings to stderr), for commands that print JSON."""
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"dvc {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def restored(output: str) -> set[str]:
    return set(re.findall(r"Stage '([^']+)' is cached - skipping run", output))


def write_params(repo: Path, edit) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    edit(params)
    (repo / "params.yaml").write_text(yaml.safe_dump(params))


def make_repo(repo: Path, mirror: Path) -> dict:
    """Copy the pipeline into a new git repository with the tiny params and a synthetic
    mirror for each data set (different images, so switching data sets changes results)."""
    for rel in PIPELINE:
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, repo / rel)
    shutil.copy(ROOT / "tests" / "tiny_params.yaml", repo / "params.yaml")
    copy_stages(
        repo, {name: write_mirror(folder, seed=10 * i) for i, (name, folder) in enumerate(mirrors(mirror).items())}
    )
    env = make_env(mirror)
    run(["git", "init", "-q"], repo, env)
    commit(repo, env, "pipeline")
    return env


def mirrors(mirror: Path) -> dict[str, Path]:
    """Data set -> its synthetic mirror: ``mirror`` itself, and a sibling for Fashion-MNIST."""
    return {"mnist": mirror, "fashion-mnist": mirror.with_name(mirror.name + "-fashion")}


def make_env(mirror: Path) -> dict:
    """The environment the tiny pipeline runs in: this Python's tools, the synthetic mirrors."""
    folders = mirrors(mirror)
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MNIST_MIRROR": str(folders["mnist"]),
        "FASHION_MNIST_MIRROR": str(folders["fashion-mnist"]),
        "DVC_NO_ANALYTICS": "1",
        "PYTHONPATH": "",
    }


def commit(repo: Path, env: dict, message: str) -> None:
    run(["git", "add", "-A"], repo, env)
    run([*GIT, "commit", "-qm", message], repo, env)


def clone(pipeline, dest: Path, pull: bool = True) -> Path:
    """A fresh git clone of the results, its outputs and run cache pulled from the DVC remote."""
    repo, env, _ = pipeline
    run(["git", "clone", "-q", str(repo), str(dest)], dest.parent, env)
    if pull:
        dvc(dest, env, "pull", "--run-cache")
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


def params_read(repo: Path) -> Path:
    """Where the first repro's stages wrote the params keys they read, one file per stage."""
    return repo.parent / "params_read"


def build_pipeline(root: Path) -> tuple[Path, dict, str]:
    """One full `dvc repro`, committed, and pushed with its run cache to a local-directory DVC
    remote. Its stages note the params keys they read (tests/test_stage_params.py reads them)."""
    repo = root / "repo"
    env = make_repo(repo, root / "mirror")
    output = dvc(repo, {**env, RECORD_ENV: str(params_read(repo))}, "repro")
    dvc(repo, env, "remote", "add", "-d", "store", str(root / "remote"))
    commit(repo, env, "results")
    # `dvc push --run-cache` sends no object of an entry's outputs kept in git (`cache: false`),
    # which a campaign's point that reran nothing would then find to add.
    run([sys.executable, "-m", "tools.push"], repo, env)
    return repo, env, output


def shared_pipeline(shared: Path, mine: Path) -> tuple[Path, dict, str]:
    """:func:`build_pipeline` once for every test worker (in ``shared``: the first to come
    builds it while the others wait on a lock), then a copy of its repository for this worker in
    ``mine``, so that each worker's tests change their own; the build's minute and a half is
    spent once. The mirrors stay shared, and so does the DVC remote that the committed
    .dvc/config names (clones pull from it; a push adds content-addressed files only);
    ``mine/remote`` is a copy of it as built, for the tests that copy one (:func:`campaign_remotes`)."""
    from tools.campaign.node import locked

    built = shared / "e2e"
    with locked(shared / "e2e.lock"):
        if not (built / "output.txt").exists():
            built.mkdir(exist_ok=True)
            output = build_pipeline(built)[2]
            # The shared remote takes pushes from the tests from now on: the copies take this.
            shutil.copytree(built / "remote", built / "remote-as-built")
            (built / "output.txt").write_text(output)
    noted = params_read(built / "repo").name
    for part, copy in (("repo", "repo"), ("remote-as-built", "remote"), (noted, noted)):
        shutil.copytree(built / part, mine / copy, symlinks=True)
    return mine / "repo", make_env(built / "mirror"), (built / "output.txt").read_text()


def campaign_remotes(repo: Path, env: dict, where: Path) -> tuple[Path, Path]:
    """For a campaign: a bare git remote of the built pipeline (``where/origin.git``) and a clone of
    it to start the campaign from (``where/driver``), whose DVC remote is a copy of the pipeline's
    own, so that nothing the campaign pushes reaches another test or timing."""
    origin, driver, store = where / "origin.git", where / "driver", where / "store"
    run(["git", "clone", "-q", "--bare", str(repo), str(origin)], where, env)
    run(["git", "clone", "-q", str(origin), str(driver)], where, env)
    shutil.copytree(repo.parent / "remote", store)
    dvc(driver, env, "remote", "modify", "--local", "store", "url", str(store))
    return origin, driver
