"""`python -m tools.push` (make push): what `dvc push --run-cache` sends, and the outputs that
the run cache's entries name and git keeps, which it does not."""

import os
import subprocess
import sys
from pathlib import Path

from harness.e2e import ROOT, dvc, run

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


ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(ROOT)}


def push(repo: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.push"], cwd=repo, env=ENV, capture_output=True, text=True)


def objects(store: Path) -> set[str]:
    return {p.name for p in (store / "files").rglob("*") if p.is_file()}


def entries(store: Path) -> set[str]:
    return {p.name for p in (store / "runs").glob("*/*/*") if p.is_file()}


def test_the_outputs_git_keeps_reach_the_remote_with_their_entries_which_dvc_push_leaves_out(tmp_path):
    repo, store = tmp_path / "repo", tmp_path / "store"
    repo.mkdir()
    run(["git", "init", "-q"], repo, ENV)
    dvc(repo, ENV, "init", "-q")
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "n.json").write_text('{"n": 3}\n')
    dvc(repo, ENV, "repro", "-q")
    dvc(repo, ENV, "remote", "add", "-d", "store", str(store))

    dvc(repo, ENV, "push", "--run-cache")
    assert len(entries(store)) == 1 and objects(store) == set()  # the entry without its output

    done = push(repo)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "pushed to the DVC remote: 1 objects, 1 run-cache entries there\n"
    assert len(entries(store)) == 1 and len(objects(store)) == 1


def test_without_a_dvc_remote_it_says_so_and_fails(tmp_path):
    run(["git", "init", "-q"], tmp_path, ENV)
    dvc(tmp_path, ENV, "init", "-q")
    done = push(tmp_path)
    assert done.returncode == 1 and done.stderr.startswith("error: ") and "remote" in done.stderr, done.stderr
