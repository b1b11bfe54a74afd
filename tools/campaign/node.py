"""One point on a node: its private clone, `dvc exp run`, the push of its outputs and ref, and the
sweep of clones whose worker is gone."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from subprocess import PIPE, STDOUT

from stages.lib import progress
from tools.campaign import CampaignError
from tools.campaign.points import Point, exp_ref
from tools.campaign.repository import Remotes, parse_refs
from tools.push import entries, push_entries

PUSH_TRIES = 4  # a push is tried this often, waiting PUSH_BACKOFF_S, then twice that, ...


PUSH_BACKOFF_S = 1.0


def clones_dir() -> Path:
    """Where this node's points clone, one folder each (its owner's pid and start time inside):
    beside the node's DVC cache, both in a folder of this user's alone. A folder at a name that
    every user can predict (/tmp/dvc-campaign-UID) could be made first by another user, who could
    then swap a clone's dvc.yaml or the module that `--finish` imports; whoever could write to
    the cache's folder could swap the clones folder after its check, or put objects in the cache
    that points train on and push."""
    node = cache_dir().parent
    node.parent.mkdir(parents=True, exist_ok=True)
    for folder in (node, node / "clones"):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
        private(folder)
    return node / "clones"


def private(folder: Path) -> None:
    """Refuse a folder that is a link, another user's, or open to other users."""
    import stat

    found = os.lstat(folder)
    if stat.S_ISLNK(found.st_mode) or not stat.S_ISDIR(found.st_mode):
        raise CampaignError(f"{folder} is not a folder but a link or a file: remove it (the campaign makes its own)")
    if found.st_uid != os.getuid():
        raise CampaignError(f"{folder} belongs to uid {found.st_uid}, not to this user (uid {os.getuid()}): remove it")
    if found.st_mode & 0o077:
        raise CampaignError(f"{folder} is open to other users (mode {found.st_mode & 0o777:04o}): chmod 700 it")


def cache_dir() -> Path:
    """The DVC cache that every point on this node shares: the baseline is fetched once."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dvc-campaign" / "cache"


SITE = "site-cache"  # in a clone's folder: DVC's site cache for that clone, which goes with it


OWNER = "owner"  # in a clone's folder: "pid start-time" of the worker that runs it


NEW = ".new-"  # a clone's folder while it is made, before its owner is named in it


KEPT = "kept"  # in a clone's folder whose push failed: kept for `--finish`, never swept


def _started(pid: int) -> str | None:
    """The start time of a live process (a zombie, killed but not yet reaped, is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def sweep(folder: Path) -> list[Path]:
    """Remove the clones whose worker is gone (killed, or its node restarted): a killed worker
    runs no cleanup. Kept clones (a failed push) stay. Returns what it removed."""
    removed = []
    for clone in folder.glob("*/"):
        if clone.name.endswith(".sweeping") or (clone / KEPT).exists():
            continue
        try:
            pid, started = (clone / OWNER).read_text().split()
        except (OSError, ValueError):
            # A clone is renamed into place with its owner named (NEW, in run_point): a folder
            # without one is a killed run's command that wrote there after the sweep had
            # renamed it away (`dvc exp run` ending makes .dvc/tmp again), and goes at once.
            # One still being made may lack it for a moment.
            if clone.name.startswith(NEW) and time.time() - clone.stat().st_mtime < 60:
                continue
        else:
            if _started(int(pid)) == started:
                continue
        # Renamed first (atomic): a command of the killed worker that still writes there for a
        # moment can make this removal fail; the next sweep finishes it, whatever its age.
        doomed = clone.with_name(f".{clone.name}.sweeping")
        with contextlib.suppress(OSError):
            clone.rename(doomed)
            removed.append(clone)
    for doomed in folder.glob(".*.sweeping/"):
        shutil.rmtree(doomed, ignore_errors=True)
    return removed


@contextlib.contextmanager
def site_cache(clone: Path):
    """DVC's site cache (its state and index, by default /var/tmp/dvc/repo/<digest of the
    repository's path>) in the clone's folder, while this process works in the clone: every
    clone is a new path, so each point would leave a folder there for good."""
    before = os.environ.get("DVC_SITE_CACHE_DIR")
    os.environ["DVC_SITE_CACHE_DIR"] = str(clone / SITE)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DVC_SITE_CACHE_DIR", None)
        else:
            os.environ["DVC_SITE_CACHE_DIR"] = before


@contextlib.contextmanager
def locked(path: Path):
    """An exclusive lock between the points on this node (an flock: it ends with its process)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def push_outputs(repo: Path, remote: str, rev: str) -> str:
    """To the DVC remote: the experiment's outputs (what `dvc exp push` sends, but DVC sends
    them after the git ref), then the run-cache entries of its stages and their outputs,
    metrics and plots included: `dvc push --run-cache` sends the entries alone (DVC 3.67), an
    entry whose outputs are not on the remote is not restored elsewhere (the stage runs again),
    and DVC logs an entry that fails to copy and goes on. So the entries are copied here and
    checked (:func:`tools.push.push_entries`). Only this experiment's entries: the node's cache
    holds other campaigns' too."""
    from dvc.repo import Repo
    from dvc.stage.cache import _can_hash, _get_stage_hash

    with contextlib.chdir(repo), Repo() as dvc_repo:  # DVC resolves outputs' paths from the cwd
        keys = sorted({_get_stage_hash(stage) for stage in dvc_repo.index.stages if _can_hash(stage)})
        found = entries(dvc_repo, keys)
        result = push_entries(dvc_repo, remote, found)
        pushed = dvc_repo.push(remote=remote, revs=[rev], workspace=False)
        # DVC warns of an object it cannot find and pushes the rest: the ref would then reach
        # the git remote with outputs that no other clone can pull. So the remote is asked.
        used = dvc_repo.used_objs(revs=[rev], remote=remote, force=True, push=True)
        objs = {obj for odb, held in used.items() if odb is None for obj in held}  # imports live elsewhere
        status = dvc_repo.cloud.status(objs, remote=remote)
        if absent := status.new | status.missing:
            names = ", ".join(sorted(obj.obj_name or obj.value for obj in absent)[:5])
            raise RuntimeError(f"{len(absent)} objects of the experiment's outputs are not on the DVC remote: {names}")
    return f"pushed to the DVC remote: {len(result.transferred) + pushed} objects, {len(found)} run-cache entries there"


def remote_ref(repo: Path, url: str, ref: str) -> str | None:
    """The commit `ref` names on the git remote at `url`: "" where it has none, None where the
    remote cannot be read."""
    done = subprocess.run(["git", "ls-remote", url, ref], cwd=repo, **_TEXT)
    if done.returncode:
        return None
    return parse_refs(done.stdout).get(ref, "")


def pushed_before(url: str, ref: str, lease: str) -> str | None:
    """The commit at ``ref`` on the git remote where one is there that the point's lease did not
    expect: the campaign's claim owns the name, so only an earlier attempt of the point pushed it."""
    found = remote_ref(Path.cwd(), url, ref)
    return found if found and found != lease else None


def push_point(clone: Path) -> list[str]:
    """Push a finished point from its clone: outputs to the DVC remote, then its ref to the
    git remote, with the lease the driver gave it (it replaces nothing else); each retried with
    backoff. Raises the last error; returns the log."""
    spec = json.loads((clone / "point.json").read_text())
    repo = clone / "repo"
    log = []
    for attempt in range(PUSH_TRIES):
        try:
            with site_cache(clone):
                log.append(push_outputs(repo, spec["dvc_remote"], spec["rev"]))
            refspec = f"{spec['rev']}:{spec['ref']}"
            lease = f"--force-with-lease={spec['ref']}:{spec['lease']}"
            done = subprocess.run(["git", "push", "-q", lease, spec["git_url"], refspec], cwd=repo, **_TEXT)
            if done.returncode:
                # A push that reached the remote but lost its reply would hit its own lease on
                # every retry: the remote ref says whether it arrived.
                if remote_ref(repo, spec["git_url"], spec["ref"]) == spec["rev"]:
                    log.append(f"pushed {spec['ref']} to the git remote (found there after: {done.stdout.strip()})")
                    return log
                raise RuntimeError(f"git push {spec['ref']}: {done.stdout.strip()}")
            log.append(f"pushed {spec['ref']} to the git remote")
            return log
        except Exception as err:
            log.append(f"push attempt {attempt + 1} of {PUSH_TRIES} failed: {' '.join(str(err).split())}")
            if attempt + 1 == PUSH_TRIES:
                raise RuntimeError("\n".join(log)) from None
            time.sleep(PUSH_BACKOFF_S * 2**attempt)
    raise AssertionError("unreachable")


_TEXT = {"stdout": PIPE, "stderr": STDOUT, "text": True}


STAGE = re.compile(r"Running stage '([^']+)'|Stage '([^']+)' is cached")


def point_env(clone: Path) -> dict[str, str]:
    """The environment of a point's commands: this Python's tools first, no analytics, DVC's
    site cache in the clone's folder (see `site_cache`), and OpenMP threads that sleep while
    they wait, unless the user chose otherwise.

    A node runs several points at once, and each stage takes a thread per core: by default an
    OpenMP thread that waits spins first, so two trainings on the same cores each spin through
    the other's time slices (benchmarks.contention). Sleeping changes no result's bits."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {"OMP_WAIT_POLICY": "PASSIVE", **os.environ, "PATH": path, "DVC_NO_ANALYTICS": "1",
            "DVC_SITE_CACHE_DIR": str(clone / SITE)}  # fmt: skip


def run_point(*, point: Point, commit: str, remotes: Remotes, lease: str, board=None) -> dict:
    """Clone, run, push one point in a folder of its own in this node's temporary directory;
    its outcome and whole log. On cancellation (Ctrl-C on the driver) its commands stop and
    the folder goes; a killed worker's folder is swept by the next point on the node."""
    import ray

    start = time.monotonic()
    node = f"{ray.util.get_node_ip_address()} {ray.get_runtime_context().get_node_id()[:8]}"
    dvc = [sys.executable, "-m", "dvc"]
    set_params = [arg for s in point.set_params for arg in ("-S", s)]
    log: list[str] = []
    result = {"ok": False, "node": node, "gpus": [str(g) for g in ray.get_gpu_ids()], "log": log}
    result["resources"] = ray.get_runtime_context().get_assigned_resources()
    result["nice"] = os.nice(0)  # a cluster's own workers may run niced (Ray's default: 15)

    def status(text: str) -> None:
        if board is not None:
            board.set.remote(point.name, f"on {node}: {text}")

    def step(*cmd: str, cwd: Path, may_fail: bool = False) -> bool:
        # A session of its own: Ctrl-C on a terminal reaches the driver, not this; a
        # cancelled point stops the whole group below (dvc and its stages) itself.
        log.append(f"$ {' '.join(cmd[2:] if cmd[0] == sys.executable else cmd)}")
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=True, **_TEXT)

        def read() -> None:
            for line in proc.stdout:
                log.append(line.rstrip("\n"))
                if found := STAGE.search(line):
                    status(found.group(1) or f"{found.group(2)} (restored)")
                elif epoch := progress.parse(line):
                    status(f"{epoch.name}, epoch {epoch.epoch}/{epoch.epochs}")

        # Read in a thread: Ray cancels a task by raising in its thread, which happens only
        # while that thread runs Python; blocked in a read of a stage that prints nothing for
        # a while, it would be killed by the forced cancel instead, and the stage left running.
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            while reader.is_alive():
                reader.join(timeout=0.2)
            return proc.wait() == 0 or may_fail
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    # A retry (Ray reruns a point whose worker was lost) after the lost attempt's push arrived
    # would run the point again and then fail on the lease: what it pushed is the result.
    if earlier := pushed_before(remotes.git_url, exp_ref(commit, point.name), lease):
        log.append(f"pushed to the git remote by an earlier attempt of this point ({earlier[:7]}): not run again")
        result.update(ok=True, rev=earlier, seconds=time.monotonic() - start)
        return result
    folder = clones_dir()
    sweep(folder)
    made = Path(tempfile.mkdtemp(prefix=f"{NEW}{point.name}-", dir=folder))
    (made / OWNER).write_text(f"{os.getpid()} {_started(os.getpid())}")
    clone = made.rename(folder / made.name.removeprefix(NEW))
    env = point_env(clone)  # before the first step, which reads it
    repo = clone / "repo"
    keep = False
    try:
        status("cloning")
        ok = (
            step("git", "clone", "-q", "--no-checkout", remotes.git_url, str(repo), cwd=clone)
            and step("git", "checkout", "-q", "--detach", commit, cwd=repo)
            and step(*dvc, "remote", "add", "--local", "--force", "--default", remotes.dvc, remotes.dvc_url, cwd=repo)
            and step(*dvc, "cache", "dir", "--local", str(cache_dir()), cwd=repo)
        )
        if not ok:
            return result
        status("fetching")
        with locked(cache_dir().parent / "fetch.lock"):  # one point fetches, the next finds it here
            fetch_start = time.monotonic()
            # The run cache's entries and the baseline's outputs; the rest comes with `--pull`.
            # A missing object fails the fetch, not the point: the run rebuilds what it lacks.
            mark = len(log)
            step(*dvc, "fetch", "--run-cache", cwd=repo, may_fail=True)
            result["fetch_s"] = time.monotonic() - fetch_start
            counts = [int(n) for line in log[mark:] for n in re.findall(r"(\d+) files? fetched", line)]
            result["fetched"] = sum(counts)
        if not step(*dvc, "exp", "run", "--pull", "-n", point.name, *set_params, cwd=repo):
            return result
        ref = exp_ref(commit, point.name)
        rev = subprocess.run(["git", "rev-parse", ref], cwd=repo, check=True, **_TEXT).stdout.strip()
        spec = {"ref": ref, "rev": rev, "lease": lease, "git_url": remotes.git_url, "dvc_remote": remotes.dvc}
        (clone / "point.json").write_text(json.dumps(spec))
        status("pushing")
        push_start = time.monotonic()
        try:
            log.extend(push_point(clone))
        except RuntimeError as err:
            log.extend(str(err).splitlines())
            keep = True
            (clone / KEPT).write_text(f"{point.name}\n")
            result["kept"] = str(clone)
            result["finish"] = finish_command(clone)
            return result
        result.update(ok=True, rev=rev, push_s=time.monotonic() - push_start)
        return result
    finally:
        result["seconds"] = time.monotonic() - start
        if not keep:
            shutil.rmtree(clone, ignore_errors=True)


def finish_command(clone: Path) -> str:
    """The shell command that finishes a kept point's push, quoted: it is pasted into a shell."""
    repo, python = shlex.quote(str(clone / "repo")), shlex.quote(sys.executable)
    return f"cd {repo} && {python} -m tools.campaign --finish {shlex.quote(str(clone))}"


class Board:
    """The running points' status (stage, epoch), set by the tasks, read by the driver."""

    def __init__(self):
        self.status: dict[str, str] = {}

    def set(self, name: str, text: str) -> None:
        self.status[name] = text

    def get(self) -> dict[str, str]:
        return self.status
