"""`python -m tools.push` (make push): what `dvc push --run-cache` sends, and the outputs that
the run cache's entries name and git keeps, which it does not."""

import os
import subprocess
import sys
from pathlib import Path

from harness.e2e import ROOT

# One stage whose metrics file git keeps (`cache: false`): DVC still run-caches the stage (one
# with a dependency: DVC run-caches no stage without one).
DVC_YAML = """stages:
  count:
    cmd: cp n.json count.json
    deps:
      - n.json
    metrics:
      - count.json:
          cache: false
"""


def sh(*cmd: str, cwd: Path) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, " ".join(cmd) + done.stdout + done.stderr
    return done.stdout


def objects(store: Path) -> set[str]:
    return {p.name for p in (store / "files").rglob("*") if p.is_file()}


def entries(store: Path) -> set[str]:
    return {p.name for p in (store / "runs").glob("*/*/*") if p.is_file()}


def test_the_outputs_git_keeps_reach_the_remote_with_their_entries_which_dvc_push_leaves_out(tmp_path):
    repo, store = tmp_path / "repo", tmp_path / "store"
    repo.mkdir()
    sh("git", "init", "-q", cwd=repo)
    sh(sys.executable, "-m", "dvc", "init", "-q", cwd=repo)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "n.json").write_text('{"n": 3}\n')
    sh(sys.executable, "-m", "dvc", "repro", "-q", cwd=repo)
    sh(sys.executable, "-m", "dvc", "remote", "add", "-d", "store", str(store), cwd=repo)

    sh(sys.executable, "-m", "dvc", "push", "--run-cache", cwd=repo)
    assert len(entries(store)) == 1 and objects(store) == set()  # the entry without its output

    said = sh(sys.executable, "-m", "tools.push", cwd=repo)
    assert said == "pushed to the DVC remote: 1 objects, 1 run-cache entries there\n"
    assert len(entries(store)) == 1 and len(objects(store)) == 1


def test_without_a_dvc_remote_it_says_so_and_fails(tmp_path):
    sh("git", "init", "-q", cwd=tmp_path)
    sh(sys.executable, "-m", "dvc", "init", "-q", cwd=tmp_path)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "tools.push"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.startswith("error: ") and "remote" in done.stderr, done.stderr
