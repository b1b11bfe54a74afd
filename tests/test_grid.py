"""The grid tool: DVC's grid syntax, every point's params checked before any task, the
repository's remotes; end to end on a Ray cluster of two nodes, inside a network namespace."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e import GIT, ROOT, dvc, dvc_stdout, grid_remotes, run
from tests.netns import RAY_ENV, listening, members, namespace, needs_netns, on_loopback
from tests.test_readme import grid_block
from tools import grid


def test_the_grid_is_dvcs_product_named_as_its_queue_names_it():
    points = grid.expand(["ae.lr=3e-4,1e-3", "dataset=mnist,fashion-mnist"], name="lr")
    assert [p.name for p in points] == ["lr-1", "lr-2", "lr-3", "lr-4"]
    assert [str(p) for p in points] == [
        "ae.lr=0.0003 dataset=mnist",
        "ae.lr=0.0003 dataset=fashion-mnist",
        "ae.lr=0.001 dataset=mnist",
        "ae.lr=0.001 dataset=fashion-mnist",
    ]
    assert grid.expand(["other.yaml:x=1,2"], name="o")[1].set_params == ["other.yaml:x=2"]


def test_the_default_name_is_the_same_for_the_same_grid_and_differs_for_another():
    first, again = (grid.expand(["vae.epochs=1,2"], name=None)[0].name for _ in range(2))
    other = grid.expand(["vae.epochs=1,3"], name=None)[0].name
    assert re.fullmatch(r"grid-[0-9a-f]{7}-1", first) and first == again != other


@pytest.mark.parametrize(
    ("set_params", "message"),
    [
        (["ae.lr=3e-4,"], "error: bad grid 'ae.lr=3e-4,': "),
        (["ae.lr=glob(*)"], "Glob override 'ae.lr=glob(*)' is not supported"),
        (["ae.lrr=1e-3,3e-3"], "(ae.lrr=0.001): unknown key ae.lrr; allowed keys in ae: hidden, latent, epochs"),
        (["ae.lr=1e-3,3.0"], "(ae.lr=3.0): ae.lr must be <= 1.0, got 3.0"),
        (["vae.epochs=2", "dataset=mnist,imagenet"], "dataset must be one of mnist | fashion-mnist, got 'imagenet'"),
        (["other.yaml:x=1"], "(other.yaml:x=1): params file other.yaml not found"),
    ],
)
def test_a_bad_grid_or_param_fails_before_ray_starts_naming_it(monkeypatch, capsys, set_params, message):
    import ray

    monkeypatch.chdir(ROOT)
    assert grid.main([arg for s in set_params for arg in ("-S", s)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert not ray.is_initialized()


def git_repo(path: Path) -> tuple[Path, dict]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    path.mkdir()
    (path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    run(["git", "init", "-q"], path, env)
    run([sys.executable, "-m", "dvc", "init", "-q"], path, env)
    run(["git", "add", "-A"], path, env)
    run([*GIT, "commit", "-qm", "start"], path, env)
    return path, env


def test_the_repository_must_be_committed_on_its_git_remote_and_have_a_dvc_remote(tmp_path):
    repo, env = git_repo(tmp_path / "repo")
    with pytest.raises(grid.GridError, match="no git remote 'origin': the nodes clone the repository from it"):
        grid.baseline(repo, "origin")
    run(["git", "clone", "-q", "--bare", str(repo), str(tmp_path / "origin.git")], tmp_path, env)
    run(["git", "remote", "add", "origin", "../origin.git"], repo, env)
    with pytest.raises(grid.GridError, match="no default DVC remote: dvc remote add -d"):
        grid.baseline(repo, "origin")
    dvc(repo, env, "remote", "add", "-d", "store", "../store")
    with pytest.raises(grid.GridError, match=r"uncommitted changes \(.dvc/config\): the points run commit"):
        grid.baseline(repo, "origin")
    run([*GIT, "commit", "-qam", "remote"], repo, env)
    with pytest.raises(grid.GridError, match="is not on git remote 'origin': git push it first"):
        grid.baseline(repo, "origin")
    run(["git", "push", "-q", "origin", "HEAD"], repo, env)
    commit, remotes = grid.baseline(repo, "origin")
    assert commit == run(["git", "rev-parse", "HEAD"], repo, env).strip()
    # Relative paths made absolute: a node's clone starts elsewhere.
    assert remotes == grid.Remotes(
        git="origin", git_url=str(tmp_path / "origin.git"), dvc="store", dvc_url=str(tmp_path / "store")
    )


def test_a_failed_point_shows_the_end_of_its_log_and_a_finished_one_what_ran():
    point = grid.Point(name="g-1", overrides=(("params.yaml", "vae.epochs=2"),))
    log = [f"line {i}" for i in range(100)]
    failed = grid.report(1, 2, point, {"ok": False, "node": "10.0.0.2 ab12cd34", "seconds": 7.2, "log": log})
    head = "[1/2] g-1 (vae.epochs=2): FAILED after 7 s on node 10.0.0.2 ab12cd34; the end of its log:"
    assert failed.splitlines()[0] == head
    assert failed.splitlines()[1:] == [f"    line {i}" for i in range(100 - grid.LOG_TAIL, 100)]
    log = ["Running stage 'train_vae':", "Stage 'sample' is cached - skipping run, checking out outputs"]
    done = grid.report(2, 2, point, {"ok": True, "node": "n", "seconds": 30, "log": log})
    assert done.endswith("done in 30 s on node n; ran train_vae; restored from the run cache sample")


@needs_netns
def test_the_local_cluster_listens_on_loopback_alone():
    """In a namespace where Ray could pick another address (10.9.0.1, with a default route),
    the local default still binds every port to 127.0.0.1; Ray's own default binds them to
    every address."""
    script = "from tools import grid; print(grid.connect(None)); import ray; ray.shutdown()"
    with namespace(other_address="10.9.0.1") as inside:
        holder = subprocess.Popen(
            [*inside, sys.executable, "-c", script + "; import time; time.sleep(60)"],
            cwd=ROOT,
            env={**os.environ, **RAY_ENV},
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout.readline().strip() == "a local Ray cluster on 127.0.0.1"
            ports = listening(inside)
        finally:
            holder.kill()
    assert len(ports) >= 4 and all(on_loopback(p) for p in ports), ports


def pushed_experiments(origin: Path, env: dict) -> set[str]:
    refs = run(["git", "ls-remote", str(origin), "refs/exps/*"], origin, env)
    return {line.rsplit("/", 1)[1] for line in refs.splitlines()}


def point_lines(output: str) -> dict[str, str]:
    """Point name -> its progress line."""
    return {m.group(1): m.group(0) for m in re.finditer(r"^\[\d+/\d+\] (\S+) .*$", output, re.MULTILINE)}


# The stages whose run cache is off by design (a plain output with `cache: false`): they
# rebuild in seconds and train nothing.
REBUILT = {"report", "explorer"}


@needs_netns
def test_the_readme_grid_runs_on_two_ray_nodes_and_its_experiments_return_through_the_remotes(pipeline, tmp_path):
    """The README's grid block, line by line: the grid on a local cluster, then a head and a
    second node started as separate processes and the same grid on them. Fashion-MNIST has no
    copy in the DVC remote and no network to download from, so its two points fail, named
    with their logs; the two MNIST points arrive in the git remote, list in `dvc exp show`
    and compare in `dvc plots diff`; on the cluster, nothing trains again."""
    repo, env, _ = pipeline
    origin, driver = grid_remotes(repo, env, tmp_path)
    env = {k: v for k, v in env.items() if not k.endswith("MNIST_MIRROR")} | RAY_ENV
    local, token, head, node, cluster = grid_block()

    with namespace() as inside:

        def shell(line: str) -> subprocess.CompletedProcess:
            line = line.replace("HEAD_IP", "127.0.0.1").replace("NODE_IP", "127.0.0.1")
            return subprocess.run([*inside, "bash", "-c", line], cwd=driver, env=env, capture_output=True, text=True)

        first = shell(local)
        print(first.stdout)
        assert first.returncode == 1, first.stdout + first.stderr
        lines = point_lines(first.stdout)
        finished = {name for name, line in lines.items() if ": done in " in line}
        failed = {name for name, line in lines.items() if ": FAILED after " in line}
        assert len(finished) == len(failed) == 2 and all("dataset=mnist" in lines[n] for n in finished), lines
        assert first.stdout.count("could not fetch train-images-idx3-ubyte.gz from any source") == 2
        assert "2 of 4 points failed" in first.stderr
        assert pushed_experiments(origin, env) == finished

        for line in (token, head, node):
            started = shell(line)
            assert started.returncode == 0, started.stdout + started.stderr
        assert all(on_loopback(p) for p in listening(inside))
        again = shell(cluster)
        print(again.stdout)
        assert again.returncode == 1, again.stdout + again.stderr
        lines = point_lines(again.stdout)
        assert {n for n, line in lines.items() if ": done in " in line} == finished
        nodes = {re.search(r"on node 127\.0\.0\.1 ([0-9a-f]{8})", line).group(1) for line in lines.values()}
        assert len(nodes) == 2, lines  # the points crossed a node boundary
        for name in finished:
            ran = re.search(r"; ran (.*?); restored", lines[name]).group(1)
            assert set(ran.split(", ")) <= REBUILT | {"no stage"}, lines[name]

    shown = json.loads(dvc_stdout(driver, env, "exp", "show", "--json"))
    params = {
        exp["name"]: rev["data"]["params"]["params.yaml"]["data"]
        for commit in shown
        for exp in commit.get("experiments") or []
        for rev in exp["revs"]
    }
    assert finished <= set(params) and {params[n]["vae"]["epochs"] for n in finished} == {1, 2}
    dvc(driver, env, "plots", "diff", *sorted(finished))
    assert (driver / "dvc_plots" / "index.html").is_file()


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:  # ended meanwhile
        return ""


def running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@needs_netns
def test_a_point_whose_worker_is_lost_mid_run_is_retried_and_arrives_once(pipeline, tmp_path):
    """The worker running the point is killed while `dvc exp run` runs: Ray runs the point
    again, the experiment arrives once, and the lost run's `dvc exp run` ends within seconds
    instead of pushing later beside the retry. No code of the tool's ends it (started in a
    session of its own, it ended all the same): Ray does, and this checks that it still does."""
    repo, env, _ = pipeline
    origin, driver = grid_remotes(repo, env, tmp_path)
    env = {**env, **RAY_ENV}
    with namespace() as inside:
        net = os.readlink(inside[1].removeprefix("--net="))
        grid_run = subprocess.Popen(
            [*inside, sys.executable, "-m", "tools.grid", "-n", "lost", "-S", "vae.epochs=2"],
            cwd=driver,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the first attempt's `dvc exp run`, and its worker
            found = [pid for pid in members(net) if "exp run" in cmdline(pid)]
            if found:
                break
            time.sleep(0.1)
        (exp_run,) = found
        worker = int(Path(f"/proc/{exp_run}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert cmdline(worker).startswith("ray::lost-1"), cmdline(worker)
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 10  # the lost run's `dvc exp run` needs 30 s more on its own
        while running(exp_run) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not running(exp_run), "the lost worker's `dvc exp run` went on without it"
        output, _ = grid_run.communicate(timeout=300)
        print(output)
    assert grid_run.returncode == 0, output
    assert re.search(r"^\[1/1\] lost-1 \(vae\.epochs=2\): done in ", output, re.MULTILINE), output
    assert pushed_experiments(origin, env) == {"lost-1"}
