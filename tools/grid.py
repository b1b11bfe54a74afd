"""A grid of DVC experiments on a Ray cluster: one `dvc exp run` per point, on any node.

    python -m tools.grid -S 'ae.lr=3e-4,1e-3,3e-3' -S 'dataset=mnist,fashion-mnist'

`-S` takes DVC's own grid syntax and expansion (Hydra sweeps, as `dvc exp run --queue -S`).
Each point is a Ray task that clones the git remote at this commit, runs
`dvc exp run --pull -n NAME -S ...` (data pulled from the DVC remote; a stage whose inputs the
run cache has seen is restored, not rerun), then pushes the outputs of its run-cache entries
and `dvc exp push --run-cache` the experiment to the git remote and its outputs and run-cache
entries to the DVC remote. Only a finished run is pushed. At the end the driver pulls the
finished experiments, so that `dvc exp show` and `dvc plots diff` list them here.

With no --address (nor RAY_ADDRESS) the cluster is a local one on this machine that listens on
127.0.0.1 alone: whoever reaches a Ray cluster can run code on it (CVE-2023-48022).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE, STDOUT

PARAMS_FILE = "params.yaml"
LOG_TAIL = 25  # lines of a failed point's log that the driver shows
# Tasks pass a few strings each way; Ray's default store (30% of RAM) would only hold memory.
LOCAL_OBJECT_STORE = 128 * 2**20
HEARTBEAT_S = 60  # a line at least this often while points run
RETRIES = 3  # Ray reruns a point whose worker or node was lost (not one that failed)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class GridError(Exception):
    """A grid that cannot start: one line naming what to fix (exit 2, before any task)."""


@dataclass(frozen=True)
class Point:
    name: str
    overrides: tuple[tuple[str, str], ...]  # (params file, Hydra override), in the order given

    @property
    def set_params(self) -> list[str]:
        """The point's `-S` arguments for `dvc exp run`."""
        return [o if path == PARAMS_FILE else f"{path}:{o}" for path, o in self.overrides]

    def __str__(self) -> str:
        return " ".join(self.set_params)


@dataclass(frozen=True)
class Remotes:
    git: str  # the git remote's name here
    git_url: str  # where the nodes clone from and push experiments to
    dvc: str  # the DVC remote's name
    dvc_url: str  # where the nodes pull data and push outputs and the run cache


# --- before any task: the grid, its params, the repository --------------------------------


def expand(set_params: list[str], name: str | None) -> list[Point]:
    """DVC's own expansion of `-S` sweeps into points, named NAME-1..N as `dvc exp run --queue
    -n NAME` names them; the default NAME is a digest of the grid, so a rerun of the same grid
    gives its points the same names."""
    from dvc.exceptions import InvalidArgumentError
    from dvc.utils.cli_parse import to_path_overrides
    from dvc.utils.hydra import get_hydra_sweeps
    from hydra.errors import HydraException

    try:
        sweeps = get_hydra_sweeps(to_path_overrides(set_params))
    except (InvalidArgumentError, HydraException) as err:
        raise GridError(f"bad grid {' '.join(set_params)!r}: {str(err).splitlines()[0]}") from None
    overrides = [tuple((path, o) for path, sweep in point.items() for o in sweep) for point in sweeps]
    if name is None:
        name = "grid-" + hashlib.sha256(repr(overrides).encode()).hexdigest()[:7]
    elif not NAME.fullmatch(name):
        raise GridError(f"--name {name!r}: letters, digits, '.', '_' and '-' only, starting with a letter or digit")
    return [Point(name=f"{name}-{i}", overrides=o) for i, o in enumerate(overrides, start=1)]


def check(points: list[Point], root: Path) -> dict[str, object]:
    """Each point's params through DVC's override and the params loader, as its stages would
    see them; the first bad one fails naming the point, the key and the allowed values.
    Returns each point's validated params, by name."""
    from dvc.exceptions import InvalidArgumentError

    from stages.lib import params

    checked = {}
    with tempfile.TemporaryDirectory(prefix="grid-params-") as tmp:
        for point in points:
            files = {PARAMS_FILE} | {path for path, _ in point.overrides}
            for path in files:
                if not (root / path).is_file():
                    raise GridError(f"{point.name} ({point}): params file {path} not found")
                (Path(tmp) / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(root / path, Path(tmp) / path)
            try:
                for path in files:
                    _apply(Path(tmp) / path, [o for p, o in point.overrides if p == path])
                checked[point.name] = params.load(Path(tmp) / PARAMS_FILE, this_machine=False)  # run on a node
            except (InvalidArgumentError, params.ParamsError) as err:
                raise GridError(f"{point.name} ({point}): {err}") from None
    return checked


def _apply(path: Path, overrides: list[str]) -> None:
    """DVC's `-S` on one params file. Hydra refuses a key the file lacks without saying more;
    added with Hydra's `+` instead, the params loader names it and the keys it allows."""
    from dvc.exceptions import InvalidArgumentError
    from dvc.utils.hydra import apply_overrides

    original = path.read_bytes()
    try:
        apply_overrides(path, overrides)
    except InvalidArgumentError as err:
        missing = re.match(r"Could not override '([^']+)'", str(err.__cause__))
        if not missing:
            raise InvalidArgumentError(" ".join(str(err.__cause__ or err).split())) from None
        path.write_bytes(original)
        key = missing.group(1)
        apply_overrides(path, [f"+{o}" if o.startswith(f"{key}=") else o for o in overrides])


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if done.returncode:
        raise GridError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def _absolute(url: str, base: Path) -> str:
    """A local path made absolute, so that a node's clone finds it; URLs as they are."""
    if "://" in url or re.match(r"^[^/]+:", url):  # a URL, or scp-like user@host:path
        return url
    return str((base / url).resolve())


def baseline(root: Path, git_remote: str) -> tuple[str, Remotes]:
    """The commit every point starts from, and the remotes the nodes reach it and DVC's data
    through; refuses uncommitted changes (the points would not see them) and a commit the git
    remote does not have (the nodes could not clone it)."""
    from dvc.repo import Repo

    commit = git(root, "rev-parse", "HEAD")
    changed = git(root, "diff", "--name-only", "HEAD")
    if changed:
        files = ", ".join(changed.splitlines()[:5])
        raise GridError(f"uncommitted changes ({files}): the points run commit {commit[:7]}; commit them first")
    if git_remote not in git(root, "remote").split():
        raise GridError(f"no git remote {git_remote!r}: the nodes clone the repository from it (git remote add)")
    git_url = _absolute(git(root, "remote", "get-url", git_remote), root)
    git(root, "fetch", "-q", git_remote)
    if not git(root, "branch", "-r", "--contains", commit, "--list", f"{git_remote}/*"):
        raise GridError(f"commit {commit[:7]} is not on git remote {git_remote!r}: git push it first")
    with Repo(str(root)) as repo:
        dvc_remote = repo.config["core"].get("remote")
        if not dvc_remote:
            raise GridError("no default DVC remote: dvc remote add -d NAME URL (the nodes pull data through it)")
        dvc_url = _absolute(str(repo.config["remote"][dvc_remote]["url"]), root / ".dvc")
    return commit, Remotes(git=git_remote, git_url=git_url, dvc=dvc_remote, dvc_url=dvc_url)


# --- on a node: one point ----------------------------------------------------------------


def push_run_outputs(repo: Path, remote: str) -> str:
    """Push the objects of the clone's run-cache entries that are here, metrics and plots
    included. `dvc push --run-cache` sends the entries alone (DVC 3.67), and an entry whose
    outputs are not on the remote is not restored elsewhere: the stage runs again."""
    from dvc.exceptions import CollectCacheError
    from dvc.repo import Repo

    with contextlib.chdir(repo), Repo() as dvc_repo:  # DVC resolves outputs' paths from the cwd
        cache = dvc_repo.stage_cache
        entries = [(key.name, value.name) for key in Path(cache.cache_dir).glob("*/*") for value in key.iterdir()]
        objs = set()
        for entry in sorted(entries):
            try:
                used = cache.get_used_objs([entry])
            except CollectCacheError:  # fetched from the remote, its outputs are not here
                continue
            objs |= {obj for found in used.values() for obj in found if dvc_repo.cache.local.exists(obj.value)}
        result = dvc_repo.cloud.push(objs, remote=remote)
    if result.failed:
        raise RuntimeError(f"{len(result.failed)} objects of the run cache failed to push")
    return f"{len(result.transferred)} objects of the run cache's outputs pushed"


def run_point(*, point: Point, commit: str, remotes: Remotes) -> dict:
    """Clone, run, push one point in a temporary folder on this node; its outcome and log."""
    import ray

    start = time.monotonic()
    node = f"{ray.util.get_node_ip_address()} {ray.get_runtime_context().get_node_id()[:8]}"
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "PATH": path, "DVC_NO_ANALYTICS": "1"}
    dvc = [sys.executable, "-m", "dvc"]
    set_params = [arg for s in point.set_params for arg in ("-S", s)]
    log: list[str] = []

    def outcome(ok: bool) -> dict:
        return {"ok": ok, "node": node, "seconds": time.monotonic() - start, "log": log}

    def step(*cmd: str, cwd: Path, may_fail: bool = False) -> bool:
        # A lost worker's commands end with it (Ray's raylet sees to its orphans), so a lost
        # point cannot push later beside its retry.
        done = subprocess.run(cmd, cwd=cwd, env=env, stdout=PIPE, stderr=STDOUT, text=True)
        log.extend([f"$ {' '.join(cmd[2:] if cmd[0] == sys.executable else cmd)}", *done.stdout.splitlines()])
        return done.returncode == 0 or may_fail

    with tempfile.TemporaryDirectory(prefix=f"{point.name}-") as tmp:
        repo = Path(tmp) / "repo"
        ok = (
            step("git", "clone", "-q", "--no-checkout", remotes.git_url, str(repo), cwd=Path(tmp))
            and step("git", "checkout", "-q", "--detach", commit, cwd=repo)
            and step(*dvc, "remote", "add", "--local", "--force", "--default", remotes.dvc, remotes.dvc_url, cwd=repo)
            # The run cache's entries; an entry's objects come with `--pull` when it matches.
            # A missing object fails the fetch, not the point: the run rebuilds what it lacks.
            and step(*dvc, "fetch", "--run-cache", cwd=repo, may_fail=True)
        )
        if not ok:
            return outcome(False)
        if not step(*dvc, "exp", "run", "--pull", "-n", point.name, *set_params, cwd=repo):
            return outcome(False)
        try:  # the objects before the entries and the experiment that refer to them
            log.append(push_run_outputs(repo, remotes.dvc))
        except Exception as err:
            log.append(f"error: {err}")
            return outcome(False)
        ok = step(*dvc, "exp", "push", "--force", "--run-cache", "origin", point.name, cwd=repo)
    return outcome(ok)


# --- the driver --------------------------------------------------------------------------


def connect(address: str | None) -> str:
    """Join the cluster at `address` (or RAY_ADDRESS), else start one on this machine that
    listens on 127.0.0.1 alone; says which."""
    import logging

    address = address or os.environ.get("RAY_ADDRESS")
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address:
        import ray

        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError) as err:
            raise GridError(f"no Ray cluster reached at {address}: {str(err).splitlines()[0]}") from None
        return f"the Ray cluster at {address}"
    # Ray on Linux replaces 127.0.0.1 by the machine's own address, and its servers then listen
    # on every address; the setting meant for a laptop's single-machine Ray keeps it on
    # loopback. Ray reads it once, when first imported.
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    ray.init(address="local", include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE, **quiet)
    addresses = {node["NodeManagerAddress"] for node in ray.nodes()}
    if addresses != {"127.0.0.1"}:
        ray.shutdown()
        raise GridError(f"the local Ray cluster took {', '.join(sorted(addresses))}, not 127.0.0.1 alone")
    return "a local Ray cluster on 127.0.0.1"


def stages(log: list[str], pattern: str) -> list[str]:
    return [m for line in log for m in re.findall(pattern, line)]


def report(index: int, total: int, point: Point, result: dict) -> str:
    head = f"[{index}/{total}] {point.name} ({point})"
    where = f"{result['seconds']:.0f} s on node {result['node']}"
    if not result["ok"]:
        tail = "\n".join(f"    {line}" for line in result["log"][-LOG_TAIL:])
        return f"{head}: FAILED after {where}; the end of its log:\n{tail}"
    ran = stages(result["log"], r"Running stage '([^']+)'")
    restored = stages(result["log"], r"Stage '([^']+)' is cached - skipping run")
    return (
        f"{head}: done in {where}; ran {', '.join(ran) or 'no stage'}; "
        f"restored from the run cache {', '.join(restored) or 'none'}"
    )


def run(points: list[Point], *, commit: str, remotes: Remotes, params: dict, cpus: float, where: str) -> list[Point]:
    """Every point as a Ray task; a progress line as each ends. Returns the finished points."""
    import ray
    from ray.exceptions import RayError

    gpu = {p.name for p in points if params[p.name].device.startswith("cuda")}
    if gpu and not ray.cluster_resources().get("GPU"):
        raise GridError(f"device cuda in {', '.join(sorted(gpu))}, but {where} has no GPU")
    if __name__ != "__main__":  # imported (tests): the nodes need not have this file on their path
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    task = ray.remote(run_point)
    pending = {
        task.options(name=p.name, num_cpus=cpus, num_gpus=1 if p.name in gpu else 0, max_retries=RETRIES).remote(
            point=p, commit=commit, remotes=remotes
        ): p
        for p in points
    }
    cores = ray.cluster_resources().get("CPU", 0)
    print(f"grid: {len(points)} points of commit {commit[:7]} on {where} ({cores:g} CPUs, {cpus:g} per point)")
    finished, start = [], time.monotonic()
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1, timeout=HEARTBEAT_S)
        if not done:
            print(f"grid: {len(points) - len(pending)} of {len(points)} ended, {time.monotonic() - start:.0f} s")
            continue
        point = pending.pop(done[0])
        try:
            result = ray.get(done[0])
        except RayError as err:  # the task itself failed, after Ray's retries of a lost worker
            result = {"ok": False, "node": "?", "seconds": time.monotonic() - start, "log": str(err).splitlines()}
        print(report(len(points) - len(pending), len(points), point, result), flush=True)
        if result["ok"]:
            finished.append(point)
    return finished


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.grid",
        description="Run a grid of `dvc exp run` on a Ray cluster; results return through the git and DVC remotes.",
    )
    parser.add_argument(
        "-S", "--set-param", action="append", required=True, metavar="[FILE:]KEY=V1,V2,...",
        help="a param and its values, in `dvc exp run -S` syntax; several -S make a product",
    )  # fmt: skip
    parser.add_argument("-n", "--name", help="experiments are named NAME-1..N (default: grid-<digest of the grid>)")
    parser.add_argument("--address", help="a running Ray cluster (default: RAY_ADDRESS, else a local one)")
    parser.add_argument("--cpus", type=float, default=1, help="CPUs Ray reserves for each point (default 1)")
    parser.add_argument("--git-remote", default="origin", help="git remote the nodes clone from (default origin)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = Path.cwd()
    try:
        points = expand(args.set_param, args.name)
        params = check(points, root)
        commit, remotes = baseline(root, args.git_remote)
        where = connect(args.address)
    except GridError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    import ray

    try:
        finished = run(points, commit=commit, remotes=remotes, params=params, cpus=args.cpus, where=where)
    except GridError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        ray.shutdown()
    if finished:
        names = [p.name for p in finished]
        pull = [sys.executable, "-m", "dvc", "exp", "pull", "--force", remotes.git, *names]
        done = subprocess.run(pull, capture_output=True, text=True)
        if done.returncode:
            print(f"error: {' '.join(pull[2:])} failed:\n{done.stdout}{done.stderr}", file=sys.stderr)
            return 1
        print(f"grid: pulled {', '.join(names)}; `dvc exp show` lists them")
    failed = len(points) - len(finished)
    if failed:
        print(f"grid: {failed} of {len(points)} points failed (above, each with the end of its log)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
