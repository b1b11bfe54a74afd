"""End to end: real `dvc repro` of the whole pipeline on a tiny profile and synthetic data."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.synthetic import write_mirror

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ["stages", "dvc.yaml", ".dvc/config", ".dvcignore", ".gitignore", "data/mnist.sha256"]
STAGES = {"download", "train_ae@1", "train_ae@2", "pca", "sweep", "train_vae", "sample", "report"}


def run(cmd: list[str], cwd: Path, env: dict) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def dvc(repo: Path, env: dict, *args: str) -> str:
    return run([sys.executable, "-m", "dvc", *args], repo, env)


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def make_repo(root: Path, mirror: Path) -> tuple[Path, dict]:
    repo = root / "repo"
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
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    run(["git", "init", "-q"], repo, env)
    run(["git", "add", "-A"], repo, env)
    run([*git, "commit", "-qm", "pipeline"], repo, env)
    return repo, env


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    repo, env = make_repo(root, root / "mirror")
    output = dvc(repo, env, "repro")
    return repo, env, output


def declared_outputs(repo: Path) -> list[str]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return [out["path"] for stage in lock["stages"].values() for out in stage.get("outs", [])]


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
    elif path.suffix == ".safetensors":
        assert path.stat().st_size > 0
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
    outs = declared_outputs(repo)
    assert len(outs) >= 25
    for rel in outs:
        check_output(repo / rel)
    report = (repo / "report" / "report.md").read_text()
    for heading in ("## Q1.", "## Q2.", "## Q3.", "## Q4."):
        assert heading in report


def test_no_temporary_files_are_left(pipeline):
    repo, _, _ = pipeline
    assert not [p for p in repo.rglob(".*.tmp") if ".git" not in p.parts]


def test_metrics_and_plots_commands_work(pipeline):
    repo, env, _ = pipeline
    metrics = json.loads(dvc(repo, env, "metrics", "show", "--json"))
    (workspace,) = metrics.values()  # keyed "" (the workspace) by dvc 3
    files = workspace["data"]
    assert {"metrics/pca.json", "metrics/sweep.json", "metrics/vae.json", "metrics/ae/seed_1.json"} <= set(files)
    shown = subprocess.run(
        [sys.executable, "-m", "dvc", "plots", "show", "--json"], cwd=repo, env=env, capture_output=True, text=True
    )
    plots = json.loads(shown.stdout)  # stdout only: dvc warns about failed plots on stderr
    assert not plots.get("errors")
    assert "Reconstruction error vs latent size" in plots["data"]


def test_caching_reruns_only_what_changed(pipeline):
    repo, env, _ = pipeline
    assert ran(dvc(repo, env, "repro")) == set()
    lock = (repo / "dvc.lock").read_text()

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["vae"]["epochs"] = 2
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    assert ran(dvc(repo, env, "repro")) == {"train_vae", "sample", "report"}

    params["ae"]["seeds"] = [1, 2, 3]
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    assert ran(dvc(repo, env, "repro")) == {"train_ae@3", "report"}
    assert lock != (repo / "dvc.lock").read_text()
