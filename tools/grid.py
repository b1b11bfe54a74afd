"""A grid of DVC experiments on a Ray cluster: one `dvc exp run` per point, on any node.

    python -m tools.grid -S 'ae.lr=3e-4,1e-3,3e-3' -S 'dataset=mnist,fashion-mnist'

`-S` takes DVC's own grid syntax and expansion (Hydra sweeps, as `dvc exp run --queue -S`).
Before any task the grid claims its name on the git remote (refs/grids/NAME, pushed without
force: of two grids started at once with one name, one is refused); names that already exist
there or here are refused unless the same grid is run again (then its finished points are kept
and the others run) or `--replace` is given. Each point is a Ray task that clones the git
remote at this commit into the node's temporary directory, shares the node's DVC cache,
runs `dvc exp run --pull -n NAME -S ...`, then pushes, retrying with backoff: first the outputs
and run-cache entries to the DVC remote, last the experiment's ref to the git remote (so no ref
there lacks its outputs). A point whose push still fails keeps its clone and names the command
that finishes it. The driver prints a status line per running point, pulls the finished
experiments by full ref and ends with a table of the grid: varying params beside metrics.

With no --address (nor RAY_ADDRESS), or with `local`, the cluster is a local one on this
machine that listens on 127.0.0.1 alone, with token auth: whoever reaches a Ray cluster can
run code on it (CVE-2023-48022).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import getpass
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import PIPE, STDOUT

PARAMS_FILE = "params.yaml"
LOG_TAIL = 25  # lines of a failed point's log that the driver shows; the whole log goes to LOGS
LOGS = "grid-logs"  # failed points' full logs, beside the driver (gitignored)
# Tasks pass a few strings each way; Ray's default store (30% of RAM) would only hold memory.
LOCAL_OBJECT_STORE = 128 * 2**20
STATUS_S = 10  # a running point's status line at most this often
HEARTBEAT_S = 60  # and at least this often, changed or not
RETRIES = 3  # Ray reruns a point whose worker or node was lost (not one that failed)
PUSH_TRIES = 4  # a push is tried this often, waiting PUSH_BACKOFF_S, then twice that, ...
PUSH_BACKOFF_S = 1.0
CANCEL_S = 30  # after Ctrl-C, how long cancelled points have to stop and clean up
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
CLAIMS = "refs/grids"  # a grid's claim on its name, on the git remote
EXPS = "refs/exps"
INTERRUPTED = 130


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


def exp_ref(commit: str, name: str) -> str:
    """DVC's ref for experiment `name` of baseline `commit`."""
    return f"{EXPS}/{commit[:2]}/{commit[2:]}/{name}"


# --- before any task: the grid, its params, the repository --------------------------------


def valid_ref(ref: str) -> bool:
    """Git's own rule for ref names: a name that passes the character check can still fail it
    ('a..b', 'a.lock'), and then only at the claim's push, or at a node's."""
    return subprocess.run(["git", "check-ref-format", ref], capture_output=True).returncode == 0


def expand(set_params: list[str], name: str | None) -> list[Point]:
    """DVC's own expansion of `-S` sweeps into points, named NAME-1..N as `dvc exp run --queue
    -n NAME` names them; the default NAME is a digest of the grid, so a rerun of the same grid
    gives its points the same names."""
    from dvc.exceptions import InvalidArgumentError
    from dvc.utils.cli_parse import to_path_overrides
    from dvc.utils.hydra import get_hydra_sweeps
    from hydra.errors import HydraException

    for arg in set_params:
        # DVC resolves `${...}` against the params file each time it applies an override: once on
        # the driver's copy for the check, again in each node's clone, where it may read otherwise.
        if "${" in arg:
            raise GridError(f"-S {arg!r}: interpolations (${{...}}) are not allowed in a grid; give the value itself")
    try:
        sweeps = get_hydra_sweeps(to_path_overrides(set_params))
    except (InvalidArgumentError, HydraException) as err:
        raise GridError(f"bad grid {' '.join(set_params)!r}: {str(err).splitlines()[0]}") from None
    overrides = [tuple((path, o) for path, sweep in point.items() for o in sweep) for point in sweeps]
    if name is None:
        name = "grid-" + hashlib.sha256(repr(overrides).encode()).hexdigest()[:7]
    elif not NAME.fullmatch(name) or not valid_ref(f"{CLAIMS}/{name}") or not valid_ref(exp_ref("0" * 40, f"{name}-1")):
        raise GridError(
            f"--name {name!r}: letters, digits, '.', '_' and '-' only, starting with a letter or digit, "
            "and a valid git ref name (no '..', no '.' or '.lock' at the end)"
        )
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
                # A node applies the override to this path in its clone: outside it, the
                # write would land in the node's temporary directory or anywhere else.
                if not (root / path).resolve().is_relative_to(root.resolve()):
                    raise GridError(f"{point.name} ({point}): params file {path} is outside the repository")
                # Absolute, it names this checkout's file, not the clone's: the check would edit
                # it in place, and a node would write to the driver's path.
                if Path(path).is_absolute():
                    relative = (root / path).resolve().relative_to(root.resolve())
                    raise GridError(f"{point.name} ({point}): params file {path}: give it as {relative}")
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


def git(root: Path, *args: str, env: dict | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, env=env)
    if done.returncode:
        raise GridError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def _absolute(url: str, base: Path) -> str:
    """A local path made absolute, so that a node's clone finds it; URLs as they are."""
    if "://" in url or re.match(r"^[^/]+:", url):  # a URL, or scp-like user@host:path
        return url
    return str((base / url).resolve())


def userinfo(url: str) -> str | None:
    """The credentials part of a URL (`user:password@`, or any `user@` but SSH's, where the
    user names an account and proves nothing: `https://TOKEN@host` is a token), else None."""
    found = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)@", url)
    if not found:
        return None
    scheme, info = found.group(1).lower(), found.group(2)
    return info if ":" in info or scheme not in ("ssh", "git+ssh", "ssh+git") else None


def redact(url: str) -> str:
    info = userinfo(url)
    return url.replace(f"{info}@", "***@", 1) if info else url


def refuse_credentials(url: str, remote: str, instead: str) -> None:
    """A URL's credentials would reach every `git clone`/`git push` argv (`ps` shows them to
    every user of a node), the logs, `grid-logs/`, the tasks' arguments and point.json."""
    if userinfo(url):
        raise GridError(
            f"{remote}: its URL {redact(url)} carries credentials, which would show in `ps`, the logs and "
            f"the tasks' arguments: take them out of the URL ({instead})"
        )


def baseline(root: Path, git_remote: str) -> tuple[str, Remotes]:
    """The commit every point starts from, and the remotes the nodes reach it and DVC's data
    through; refuses uncommitted changes (the points would not see them) and a commit the git
    remote does not have (the nodes could not clone it)."""
    from dvc.repo import Repo

    commit = git(root, "rev-parse", "HEAD")
    # Untracked files count: a new stage module or params file is not in the clones either.
    changed = git(root, "status", "--porcelain", "--untracked-files=all")
    if changed:
        files = ", ".join(line[2:].strip() for line in changed.splitlines()[:5])  # `XY path`, the first stripped
        raise GridError(f"uncommitted changes ({files}): the points run commit {commit[:7]}; commit them first")
    if git_remote not in git(root, "remote").split():
        raise GridError(f"no git remote {git_remote!r}: the nodes clone the repository from it (git remote add)")
    git_url = _absolute(git(root, "remote", "get-url", git_remote), root)
    refuse_credentials(git_url, f"git remote {git_remote!r}", "git remote set-url, and a git credential helper")
    git(root, "fetch", "-q", git_remote)
    if not git(root, "branch", "-r", "--contains", commit, "--list", f"{git_remote}/*"):
        raise GridError(f"commit {commit[:7]} is not on git remote {git_remote!r}: git push it first")
    with Repo(str(root)) as repo:
        dvc_remote = repo.config["core"].get("remote")
        if not dvc_remote:
            raise GridError("no default DVC remote: dvc remote add -d NAME URL (the nodes pull data through it)")
        dvc_url = _absolute(str(repo.config["remote"][dvc_remote]["url"]), root / ".dvc")
    refuse_credentials(
        dvc_url, f"DVC remote {dvc_remote!r}", "dvc remote modify, and credentials in each node's DVC --local config"
    )
    return commit, Remotes(git=git_remote, git_url=git_url, dvc=dvc_remote, dvc_url=dvc_url)


@dataclass(frozen=True)
class Claim:
    done: dict[str, str]  # points already on the git remote from an earlier run of this grid: name -> commit
    leases: dict[str, str]  # each point's ref -> the commit it may replace there ("": none)
    ref: str = field(default="", compare=False)  # refs/grids/NAME
    commit: str = field(default="", compare=False)  # the claim pushed there, "state: running"
    message: str = field(default="", compare=False)
    note: str = field(default="", compare=False)  # said before the grid runs: a stale claim taken over


def _refs(lines: str) -> dict[str, str]:
    return {ref: sha for sha, ref in (line.split() for line in lines.splitlines() if line.strip())}


def local_refs(root: Path, *patterns: str) -> dict[str, str]:
    """This clone's refs that match ``patterns`` (none: no refs), each to its commit."""
    if not patterns:
        return {}
    return _refs(git(root, "for-each-ref", "--format=%(objectname) %(refname)", *patterns))


def claim(root: Path, remotes: Remotes, commit: str, points: list[Point], *, replace: bool) -> Claim:
    """Claim the grid's name on the git remote before any task, so that nothing overwrites.

    Refused: names of experiments that exist on the remote or here (any baseline), unless
    this same grid (commit, names, params) claimed them before, which resumes it, or unless
    `replace`. The claim is a commit pushed to refs/grids/NAME without force: if another grid
    pushed its own meanwhile, git refuses ours (not a fast-forward), so of two grids started
    at once with one name, one goes on and the other stops here."""
    grid = points[0].name.rsplit("-", 1)[0]
    names = {p.name for p in points}
    digest = hashlib.sha256(repr((commit, [(p.name, p.overrides) for p in points])).encode()).hexdigest()
    claim_ref = f"{CLAIMS}/{grid}"
    remote = _refs(git(root, "ls-remote", remotes.git_url, f"{EXPS}/*", claim_ref))
    here = local_refs(root, EXPS)
    on_remote = {ref: sha for ref, sha in remote.items() if ref.startswith(EXPS) and ref.rsplit("/", 1)[1] in names}
    ours = {exp_ref(commit, p.name) for p in points}
    previous = remote.get(claim_ref, "")
    same_grid, note = False, ""
    if previous:
        git(root, "fetch", "-q", remotes.git_url, claim_ref)
        said = git(root, "log", "-1", "--format=%B", "FETCH_HEAD")
        same_grid = f"digest: {digest}" in said
        started = re.search(r"^started: (.*)$", said, re.MULTILINE)
        if same_grid and "state: running" in said and not replace and stale(started.group(1) if started else ""):
            note = f"taking over {claim_ref}, whose driver is gone ({started.group(1)}): its finished points are kept"
        elif same_grid and "state: running" in said and not replace:
            raise GridError(
                f"grid {grid!r} is running ({claim_ref} on git remote {remotes.git!r}: started by "
                f"{started.group(1) if started else '?'}): wait for it to end, or --replace if its driver is gone"
            )
    done = {ref.rsplit("/", 1)[1]: sha for ref, sha in on_remote.items() if same_grid and ref in ours}
    clashes = {ref.rsplit("/", 1)[1] for ref in on_remote if ref.rsplit("/", 1)[1] not in done}
    # Here, a name is fine where it is a point of this grid pulled from the remote, same commit.
    clashes |= {
        ref.rsplit("/", 1)[1]
        for ref, sha in here.items()
        if ref.rsplit("/", 1)[1] in names and done.get(ref.rsplit("/", 1)[1]) != sha
    }
    if previous and not same_grid and not replace:
        raise GridError(
            f"grid name {grid!r} is taken on git remote {remotes.git!r} by another grid ({claim_ref}): "
            "choose another -n, or --replace to replace its experiments"
        )
    if clashes and not replace:
        raise GridError(
            f"experiments {', '.join(sorted(clashes))} already exist on git remote {remotes.git!r} or here: "
            "choose another -n, or --replace to replace them"
        )
    if replace:
        done = {}
    message = f"grid {grid}\n\ndigest: {digest}\nstarted: {stamp()}\nstate: running\n" + "".join(
        f"{p.name}: {p}\n" for p in points
    )
    ident = {"GIT_AUTHOR_NAME": "tools.grid", "GIT_AUTHOR_EMAIL": "grid@localhost"}
    ident |= {"GIT_COMMITTER_NAME": "tools.grid", "GIT_COMMITTER_EMAIL": "grid@localhost"}
    parent = previous if same_grid and not replace else commit  # a resumed grid fast-forwards its claim
    mine = git(root, "commit-tree", f"{commit}^{{tree}}", "-p", parent, "-m", message, env={**os.environ, **ident})
    lease = f"--force-with-lease={claim_ref}:{previous if replace else parent if same_grid else ''}"
    try:
        git(root, "push", "-q", lease, remotes.git_url, f"{mine}:{claim_ref}")
    except GridError:
        raise GridError(
            f"grid name {grid!r} was claimed on git remote {remotes.git!r} by another grid meanwhile "
            f"({claim_ref} moved): choose another -n"
        ) from None
    leases = {ref: remote.get(ref, "") if replace else "" for ref in ours}
    return Claim(done=done, leases=leases, ref=claim_ref, commit=mine, message=message, note=note)


def stamp() -> str:
    """Who claims a grid: user@host, pid, time, and a nonce (two claims never read the same)."""
    return f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()} {time.time():.0f} {secrets.token_hex(4)}"


def stale(started: str) -> bool:
    """Whether a claim's `started:` stamp names a driver on this machine, of this user, that is
    gone (killed outright, its machine restarted): no process has its pid, or the one that has
    it started after the claim. A driver elsewhere cannot be seen: not stale."""
    import psutil

    found = re.fullmatch(r"(\S+)@(\S+) pid (\d+) (\d+) \S+", started)
    if not found or (found.group(1), found.group(2)) != (getpass.getuser(), socket.gethostname()):
        return False
    try:
        return psutil.Process(int(found.group(3))).create_time() > int(found.group(4)) + 1
    except psutil.NoSuchProcess:
        return True


def release(root: Path, remotes: Remotes, claim: Claim) -> None:
    """Mark the grid's claim ended (a fast-forward of our own claim): the same grid may then
    run again, keeping its finished points. Best effort: a grid whose claim stays running is
    refused until --replace."""
    ident = {"GIT_AUTHOR_NAME": "tools.grid", "GIT_AUTHOR_EMAIL": "grid@localhost"}
    ident |= {"GIT_COMMITTER_NAME": "tools.grid", "GIT_COMMITTER_EMAIL": "grid@localhost"}
    message = claim.message.replace("state: running", "state: ended")
    with contextlib.suppress(GridError):
        ended = git(
            root,
            "commit-tree",
            f"{claim.commit}^{{tree}}",
            "-p",
            claim.commit,
            "-m",
            message,
            env={**os.environ, **ident},
        )
        git(
            root,
            "push",
            "-q",
            f"--force-with-lease={claim.ref}:{claim.commit}",
            remotes.git_url,
            f"{ended}:{claim.ref}",
        )


# --- on a node: one point ----------------------------------------------------------------


def clones_dir() -> Path:
    """Where this node's points clone, one folder each (its owner's pid and start time inside):
    beside the node's DVC cache, in a folder of this user's alone. A folder at a name that
    every user can predict (/tmp/dvc-grid-UID) could be made first by another user, who could
    then swap a clone's dvc.yaml or the module that `--finish` imports."""
    folder = cache_dir().parent / "clones"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    private(folder)
    return folder


def private(folder: Path) -> None:
    """Refuse a folder that is a link, another user's, or open to other users."""
    import stat

    found = os.lstat(folder)
    if stat.S_ISLNK(found.st_mode) or not stat.S_ISDIR(found.st_mode):
        raise GridError(f"{folder} is not a folder but a link or a file: remove it (the grid makes its own)")
    if found.st_uid != os.getuid():
        raise GridError(f"{folder} belongs to uid {found.st_uid}, not to this user (uid {os.getuid()}): remove it")
    if found.st_mode & 0o077:
        raise GridError(f"{folder} is open to other users (mode {found.st_mode & 0o777:04o}): chmod 700 it")


def cache_dir() -> Path:
    """The DVC cache that every point on this node shares: the baseline is fetched once."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dvc-grid" / "cache"


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
    checked. Only this experiment's entries: the node's cache holds other grids' too."""
    from dvc.exceptions import CollectCacheError
    from dvc.repo import Repo
    from dvc.stage.cache import _can_hash, _get_stage_hash

    with contextlib.chdir(repo), Repo() as dvc_repo:  # DVC resolves outputs' paths from the cwd
        cache = dvc_repo.stage_cache
        keys = sorted({_get_stage_hash(stage) for stage in dvc_repo.index.stages if _can_hash(stage)})
        entries = [(key, value.name) for key in keys for value in sorted(Path(cache._get_cache_dir(key)).glob("*"))]
        objs = set()
        for entry in entries:
            try:
                used = cache.get_used_objs([entry])
            except CollectCacheError:  # fetched from the remote, its outputs are not here
                continue
            objs |= {obj for found in used.values() for obj in found if dvc_repo.cache.local.exists(obj.value)}
        result = dvc_repo.cloud.push(objs, remote=remote)
        if result.failed:
            raise RuntimeError(f"{len(result.failed)} objects of the run cache failed to push")
        pushed = dvc_repo.push(remote=remote, revs=[rev], workspace=False)
        odb = dvc_repo.cloud.get_remote_odb(remote, "push --run-cache", hash_name="md5-dos2unix")
        for key, value in entries:
            target = odb.fs.join(odb.path, "runs", key[:2], key, value)
            if not odb.fs.exists(target):
                odb.fs.makedirs(odb.fs.parent(target), exist_ok=True)
                odb.fs.put_file(os.path.join(cache._get_cache_dir(key), value), target)
        missing = [
            key for key, value in entries if not odb.fs.exists(odb.fs.join(odb.path, "runs", key[:2], key, value))
        ]
        if missing:
            raise RuntimeError(f"{len(missing)} run-cache entries failed to push")
        # DVC warns of an object it cannot find and pushes the rest: the ref would then reach
        # the git remote with outputs that no other clone can pull. So the remote is asked.
        used = dvc_repo.used_objs(revs=[rev], remote=remote, force=True, push=True)
        objs = {obj for odb, found in used.items() if odb is None for obj in found}  # imports live elsewhere
        status = dvc_repo.cloud.status(objs, remote=remote)
        if absent := status.new | status.missing:
            names = ", ".join(sorted(obj.obj_name or obj.value for obj in absent)[:5])
            raise RuntimeError(f"{len(absent)} objects of the experiment's outputs are not on the DVC remote: {names}")
    return (
        f"pushed to the DVC remote: {len(result.transferred) + pushed} objects, {len(entries)} run-cache entries there"
    )


def remote_ref(repo: Path, url: str, ref: str) -> str | None:
    """The commit `ref` names on the git remote at `url`: "" where it has none, None where the
    remote cannot be read."""
    done = subprocess.run(["git", "ls-remote", url, ref], cwd=repo, **_TEXT)
    if done.returncode:
        return None
    return _refs(done.stdout).get(ref, "")


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
EPOCH = re.compile(r"^(.+?): epoch (\d+)/(\d+)")


def point_env(clone: Path) -> dict[str, str]:
    """The environment of a point's commands: this Python's tools first, no analytics, and
    DVC's site cache in the clone's folder (see `site_cache`)."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path, "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(clone / SITE)}


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
                elif found := EPOCH.match(line):
                    status(f"{found.group(1)}, epoch {found.group(2)}/{found.group(3)}")

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
            and step(*dvc, "config", "--local", "cache.shared", "group", cwd=repo)
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
        try:
            log.extend(push_point(clone))
        except RuntimeError as err:
            log.extend(str(err).splitlines())
            keep = True
            (clone / KEPT).write_text(f"{point.name}\n")
            result["kept"] = str(clone)
            result["finish"] = finish_command(clone)
            return result
        result.update(ok=True, rev=rev)
        return result
    finally:
        result["seconds"] = time.monotonic() - start
        if not keep:
            shutil.rmtree(clone, ignore_errors=True)


def finish_command(clone: Path) -> str:
    """The shell command that finishes a kept point's push, quoted: it is pasted into a shell."""
    repo, python = shlex.quote(str(clone / "repo")), shlex.quote(sys.executable)
    return f"cd {repo} && {python} -m tools.grid --finish {shlex.quote(str(clone))}"


class Board:
    """The running points' status (stage, epoch), set by the tasks, read by the driver."""

    def __init__(self):
        self.status: dict[str, str] = {}

    def set(self, name: str, text: str) -> None:
        self.status[name] = text

    def get(self) -> dict[str, str]:
        return self.status


# --- the driver --------------------------------------------------------------------------


def is_local(address: str | None) -> bool:
    return not address or address.strip().lower() == "local"


def connect(address: str | None, *, no_auth: bool = False) -> str:
    """Join the cluster at `address` (or RAY_ADDRESS), with token auth unless `no_auth`, else
    (none, or `local`) start one on this machine that listens on 127.0.0.1 alone, with token
    auth; says which."""
    import logging

    address = address or os.environ.get("RAY_ADDRESS")
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    if not is_local(address):
        # Ray's job API without auth runs whatever reaches it (CVE-2023-48022); Ray presents a
        # token only in token mode, and a cluster started without it accepts every client.
        if os.environ.get("RAY_AUTH_MODE", "").strip().lower() != "token" and not no_auth:
            raise GridError(
                f"the Ray cluster at {address} is joined without token auth: whoever reaches it runs code "
                "on it; start its nodes and this grid with RAY_AUTH_MODE=token, or give --no-auth where "
                "no one else reaches the cluster"
            )
        if not no_auth and not os.environ.get("RAY_AUTH_TOKEN") and os.path.lexists(token_path()):
            private_token(token_path())
        import ray

        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError) as err:
            raise GridError(f"no Ray cluster reached at {address}: {str(err).splitlines()[0]}") from None
        return f"the Ray cluster at {address}" + (" (no auth: --no-auth)" if no_auth else " (token auth)")
    # Ray on Linux replaces 127.0.0.1 by the machine's own address, and its servers then listen
    # on every address; the setting meant for a laptop's single-machine Ray keeps it on
    # loopback. Ray reads it once, when first imported.
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.pop("RAY_ADDRESS", None)  # `local` there would also reach ray.init
    token = auth_token()
    os.environ["RAY_AUTH_MODE"] = "token"  # whatever this shell says: every local user reaches 127.0.0.1
    import ray

    ray.init(address="local", include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE, **quiet)
    wide = [f"{ip}:{port}" for ip, port in listening() if not loopback(ip)]
    if wide:
        ray.shutdown()
        raise GridError(f"the local Ray cluster listens on {', '.join(sorted(wide))}, not 127.0.0.1 alone")
    return f"a local Ray cluster at {ray.get_runtime_context().gcs_address} (token auth, {token})"


def token_path() -> Path:
    return Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")


def auth_token() -> str:
    """Where the local cluster's token comes from; one is made, readable by this user alone,
    where none exists (Ray would write it readable by every user). Of two grids making it at
    once, the second uses the first's: the token is written whole, then linked into place."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    path, made = token_path(), False
    if not os.path.lexists(path):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, whole = tempfile.mkstemp(prefix=".auth_token-", dir=path.parent)  # mode 0600
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
            with contextlib.suppress(FileExistsError):  # another grid's, made meanwhile
                os.link(whole, path)
                made = True
        finally:
            os.unlink(whole)
    private_token(path)
    return f"new token in {path}" if made else f"token in {path}"


def private_token(path: Path) -> None:
    """Refuse a token file that another user owns or may read: whoever reads it can run code on
    the cluster. Refused rather than made private here: it may have been read already."""
    if not path.is_file():
        raise GridError(f"token file {path} is not a file: remove it (a new token is made)")
    found = path.stat()
    if found.st_uid != os.getuid():
        raise GridError(f"token file {path} belongs to uid {found.st_uid}, not to this user: remove it")
    if found.st_mode & 0o077:
        raise GridError(
            f"token file {path} is readable by other users (mode {found.st_mode & 0o777:04o}): "
            f"chmod 600 {path} if no one else can have read it, else remove it (a new token is made)"
        )


def loopback(ip: str) -> bool:
    import ipaddress

    address = ipaddress.ip_address(ip)
    return (getattr(address, "ipv4_mapped", None) or address).is_loopback


def listening() -> set[tuple[str, int]]:
    """The addresses on which this process and its descendants (the local cluster) listen:
    the kernel's sockets, not the address Ray advertises."""
    import psutil

    me = psutil.Process()
    pids = {me.pid} | {p.pid for p in me.children(recursive=True)}
    return {
        (c.laddr.ip, c.laddr.port)
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.pid in pids
    }


def report(index: int, total: int, point: Point, result: dict) -> str:
    head = f"[{index}/{total}] {point.name} ({point})"
    held = [f"{result['resources']['CPU']:g} CPU"] if "CPU" in result.get("resources", {}) else []
    held += [f"GPU {','.join(result['gpus'])}"] if result.get("gpus") else []
    where = f"{result['seconds']:.0f} s on node {result['node']}" + (f" with {', '.join(held)}" if held else "")
    if result.get("kept"):
        tail = "\n".join(f"    {line}" for line in result["log"][-LOG_TAIL:])
        return (
            f"{head}: PUSH FAILED after {where}; its run is kept in {result['kept']} on that node; "
            f"to finish the push there: {result['finish']}\n{tail}"
        )
    fetched = f"fetched {result['fetched']} files in {result['fetch_s']:.1f} s; " if "fetch_s" in result else ""
    if not result["ok"]:
        tail = "\n".join(f"    {line}" for line in result["log"][-LOG_TAIL:])
        return f"{head}: FAILED after {where}; {fetched}the end of its log:\n{tail}"
    ran = [m for line in result["log"] for m in re.findall(r"Running stage '([^']+)'", line)]
    restored = [m for line in result["log"] for m in re.findall(r"Stage '([^']+)' is cached - skipping run", line)]
    return (
        f"{head}: done in {where}; {fetched}ran {', '.join(ran) or 'no stage'}; "
        f"restored from the run cache {', '.join(restored) or 'none'}"
    )


@dataclass
class Outcome:
    finished: dict[str, str]  # name -> the commit its point pushed
    states: dict[str, str]  # every point's state: done, failed, push failed, cancelled, done before
    interrupted: bool = False


class Stop:
    """SIGINT, SIGTERM and SIGHUP as Ctrl-C: the first raises KeyboardInterrupt in the driver
    (the running points are cancelled, the finished ones pulled, the claim ended); once that
    has begun (`hold`), later ones are counted and said, not raised: cut short, the cleanup
    would leave the claim "running" and the finished points unpulled."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self):
        self.count = 0
        self.first = ""  # the signal that stopped the grid
        self.held = False
        self.previous: dict = {}

    def __enter__(self) -> Stop:
        for sig in self.SIGNALS:
            self.previous[sig] = signal.signal(sig, self.caught)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def hold(self) -> None:
        self.held = True

    def caught(self, signum: int, frame) -> None:
        self.count += 1
        name = signal.Signals(signum).name
        self.first = self.first or name
        if signum == signal.SIGHUP:  # the terminal is gone: a write to it would fail the cleanup
            for stream in ("stdout", "stderr"):
                with contextlib.suppress(Exception):
                    if getattr(sys, stream).isatty():
                        setattr(sys, stream, open(os.devnull, "w"))  # noqa: SIM115 (the process's own, to its end)
        if self.count == 1 and not self.held:
            raise KeyboardInterrupt(name)
        # os.write: a print here could land inside another print, which Python refuses.
        with contextlib.suppress(OSError):
            os.write(2, f"\ngrid: {name}: stopping already (finished points pulled, claim ended)\n".encode())


def run(
    points: list[Point],
    *,
    commit: str,
    remotes: Remotes,
    params: dict,
    cpus: float,
    where: str,
    claim: Claim,
    stop: Stop | None = None,
):
    """Every point not done before as a Ray task; a status line per running point at most
    every STATUS_S, a line as each ends. Ctrl-C (or SIGTERM, SIGHUP: `stop`) cancels the
    running points (their commands stop, their clones go) and keeps the finished ones."""
    import ray
    from ray.exceptions import RayError

    has_gpu = bool(ray.cluster_resources().get("GPU"))
    gpu = {p.name for p in points if params[p.name].device.startswith("cuda")}
    if gpu and not has_gpu:
        raise GridError(f"device cuda in {', '.join(sorted(gpu))}, but {where} has no GPU")
    if has_gpu:  # `auto` takes a GPU where one exists: ask Ray for one, or points pile onto GPU 0
        gpu |= {p.name for p in points if params[p.name].device == "auto"}
    if __name__ != "__main__":  # imported (tests): the nodes need not have this file on their path
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    board = ray.remote(num_cpus=0)(Board).remote()
    task = ray.remote(run_point)
    todo = [p for p in points if p.name not in claim.done]
    pending = {
        task.options(name=p.name, num_cpus=cpus, num_gpus=1 if p.name in gpu else 0, max_retries=RETRIES).remote(
            point=p, commit=commit, remotes=remotes, lease=claim.leases[exp_ref(commit, p.name)], board=board
        ): p
        for p in todo
    }
    cores, gpus = ray.cluster_resources().get("CPU", 0), ray.cluster_resources().get("GPU", 0)
    print(
        f"grid: {len(todo)} points of commit {commit[:7]} on {where} ({cores:g} CPUs, {gpus:g} GPUs; "
        f"{cpus:g} CPUs per point, a GPU for {len(gpu)})"
        + (f"; {len(claim.done)} done before: {', '.join(sorted(claim.done))}" if claim.done else ""),
        flush=True,
    )
    outcome = Outcome(finished=dict(claim.done), states=dict.fromkeys(claim.done, "done before"))
    start, shown, last = time.monotonic(), {}, 0.0

    def ended(ref, point: Point) -> None:
        try:
            result = ray.get(ref)
        except RayError as err:  # the task itself failed, after Ray's retries of a lost worker
            result = {"ok": False, "node": "?", "seconds": time.monotonic() - start, "log": str(err).splitlines()}
        print(report(len(outcome.states) + 1 - len(claim.done), len(todo), point, result), flush=True)
        if result["ok"]:
            outcome.finished[point.name] = result["rev"]
        elif result["log"]:
            logs = Path(LOGS)
            logs.mkdir(exist_ok=True)
            (logs / f"{point.name}.log").write_text("\n".join(result["log"]) + "\n")
            print(f"    (its whole log: {logs / point.name}.log)", flush=True)
        outcome.states[point.name] = "done" if result["ok"] else "push failed" if result.get("kept") else "failed"

    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=STATUS_S)
            for ref in done:
                ended(ref, pending[ref])
                del pending[ref]  # after its line: a point stopped halfway through is seen again below
            now = time.monotonic()
            if pending and now - last >= STATUS_S:
                try:
                    status = ray.get(board.get.remote(), timeout=STATUS_S)
                except RayError as err:  # the board is only for show: the points run on without it
                    status = {}
                    print(f"grid: no status this time ({type(err).__name__})", flush=True)
                for point in pending.values():
                    text = status.get(point.name, "waiting for a node")
                    if shown.get(point.name, (None, 0))[0] != text or now - shown[point.name][1] >= HEARTBEAT_S:
                        print(f"grid: {point.name} {text} ({now - start:.0f} s)", flush=True)
                        shown[point.name] = (text, now)
                last = now
    except KeyboardInterrupt:  # Ray re-raises it bare from its waits: the signal's name is in `stop`
        if stop is not None:
            stop.hold()
        why = stop.first if stop is not None and stop.first else "SIGINT"
        outcome.interrupted = True
        print(
            f"\ngrid: interrupted: cancelling {len(pending)} running points ({why})",
            file=sys.stderr,
            flush=True,
        )
        for ref in pending:
            ray.cancel(ref)  # KeyboardInterrupt in the task: its commands stop, its clone goes
        done, rest = ray.wait(list(pending), num_returns=len(pending), timeout=CANCEL_S)
        for ref in done:
            point = pending.pop(ref)
            try:
                ray.get(ref)
            except RayError:  # cancelled
                outcome.states[point.name] = "cancelled"
            else:  # it ended before the cancel reached it
                ended(ref, point)
        for ref in rest:
            ray.cancel(ref, force=True)
            outcome.states[pending.pop(ref).name] = "cancelled"
    return outcome


def pull(root: Path, remotes: Remotes, commit: str, finished: dict[str, str], *, replaced: dict[str, str]) -> None:
    """The finished experiments, by full ref (a name could match another baseline's), each
    checked to be the commit its point pushed. Nothing is forced: a ref here of the same name
    moves only where it is the commit the grid replaced on the remote (`replaced`, the claim's
    leases); any other is work of this clone that the remote never had, kept and named."""
    refs = {name: exp_ref(commit, name) for name in sorted(finished)}
    here = local_refs(root, *refs.values())
    kept = []
    for name, ref in refs.items():
        local = here.get(ref)
        if local is None or local == finished[name]:
            continue
        if local == replaced.get(ref):
            git(root, "update-ref", "-d", ref, local)  # only while it is still that commit
        else:
            kept.append(name)
    wanted = [ref for name, ref in refs.items() if name not in kept]
    if wanted:
        cmd = [sys.executable, "-m", "dvc", "exp", "pull", remotes.git, *wanted]
        done = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
        if done.returncode:
            raise GridError(f"{' '.join(cmd[2:])} failed:\n{done.stdout}{done.stderr}")
    here = local_refs(root, *wanted)
    wrong = [name for name, ref in refs.items() if name not in kept and here.get(ref) != finished[name]]
    if wrong:
        raise GridError(f"experiments {', '.join(sorted(wrong))} here are not the commits the grid pushed")
    if kept:
        raise GridError(
            f"experiments {', '.join(kept)} here are commits of this clone that the grid did not replace: kept; "
            f"`dvc exp pull --force {remotes.git} NAME` takes the grid's instead"
        )


HEADLINE = {  # metrics file: key -> column
    "metrics/vae.json": {"test_loss": "vae test_loss"},
    "metrics/pca.json": {"test_mse": "pca test_mse"},
    "metrics/study.json": {"ae_runs.test_mse.mean": "ae test_mse"},
}


def table(root: Path, points: list[Point], states: dict[str, str]):
    """The grid's points: the params that vary, the headline metrics and the verdicts held,
    as `dvc exp show` gives them for these names (a point not here has its state alone)."""
    import pandas as pd

    cmd = [sys.executable, "-m", "dvc", "exp", "show", "--json"]
    done = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    shown = {
        rev["name"]: rev.get("data") or {}
        for base in (json.loads(done.stdout) if done.returncode == 0 else [])
        for exp in base.get("experiments") or []
        for rev in exp["revs"]
        if rev.get("name")
    }
    keys = list(dict.fromkeys(o.split("=", 1)[0].lstrip("+~") for p in points for _, o in p.overrides))
    rows = []
    for point in points:
        row = {"experiment": point.name, "state": states.get(point.name, "not run")}
        data = shown.get(point.name)
        values = dict(o.split("=", 1) for _, o in point.overrides)
        if data:
            for file, found in data.get("params", {}).items():
                for key in keys:
                    if file == PARAMS_FILE and (v := _get(found.get("data", {}), key)) is not None:
                        values[key] = v
            metrics = {file: found.get("data", {}) for file, found in data.get("metrics", {}).items()}
            for file, columns in HEADLINE.items():
                for key, column in columns.items():
                    row[column] = _get(metrics.get(file, {}), key)
            verdicts = metrics.get("metrics/study.json", {}).get("verdicts", {})
            seeds = _get(data.get("params", {}).get(PARAMS_FILE, {}).get("data", {}), "ae.seeds")
            row["verdicts held"] = f"{held(verdicts, len(seeds) if isinstance(seeds, list) else None)}/{len(verdicts)}"
        rows.append({**{k: values.get(k) for k in keys}, **row})
    return pd.DataFrame(rows).set_index("experiment")


def held(verdicts: dict, runs: int | None) -> int:
    """How many verdicts hold: an outcome is a boolean, or the number of the study's runs (one
    per `ae.seeds`) it holds in, and then it holds where it holds in all of them, as the report
    reads it (stages/lib/robustness.py, `holds`)."""
    return sum(v is True or (type(v) is int and runs is not None and runs > 0 and v == runs) for v in verdicts.values())


def _get(data: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.grid",
        description="Run a grid of `dvc exp run` on a Ray cluster; results return through the git and DVC remotes.",
    )
    parser.add_argument(
        "-S", "--set-param", action="append", metavar="[FILE:]KEY=V1,V2,...",
        help="a param and its values, in `dvc exp run -S` syntax; several -S make a product",
    )  # fmt: skip
    parser.add_argument("-n", "--name", help="experiments are named NAME-1..N (default: grid-<digest of the grid>)")
    parser.add_argument("--address", help="a running Ray cluster (default: RAY_ADDRESS, else a local one)")
    parser.add_argument(
        "--no-auth", action="store_true",
        help="join a cluster at --address without token auth (only where no one else reaches it)",
    )  # fmt: skip
    parser.add_argument("--cpus", type=float, default=1, help="CPUs Ray reserves for each point (default 1)")
    parser.add_argument("--git-remote", default="origin", help="git remote the nodes clone from (default origin)")
    parser.add_argument("--replace", action="store_true", help="replace experiments of the same names")
    parser.add_argument("--finish", metavar="CLONE", help="finish the push of a point kept in CLONE (on its node)")
    args = parser.parse_args(argv)
    if not args.set_param and not args.finish:
        parser.error("-S is required")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.finish:
        try:
            print("\n".join(push_point(Path(args.finish))))
        except RuntimeError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        shutil.rmtree(args.finish)
        return 0
    with Stop() as stop:
        return run_grid(args, stop)


def run_grid(args: argparse.Namespace, stop: Stop) -> int:
    """The grid, from its check to its table, with SIGINT, SIGTERM and SIGHUP handled by `stop`."""
    root = Path.cwd()
    try:
        points = expand(args.set_param, args.name)
        params = check(points, root)
        commit, remotes = baseline(root, args.git_remote)
        claimed = claim(root, remotes, commit, points, replace=args.replace)
    except GridError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # no task yet; a claim pushed just now is taken over by a rerun
        print("\ngrid: interrupted before any task", file=sys.stderr)
        return INTERRUPTED
    if claimed.note:
        print(f"grid: {claimed.note}", flush=True)
    outcome = Outcome(finished=dict(claimed.done), states=dict.fromkeys(claimed.done, "done before"))
    try:
        where = connect(args.address, no_auth=args.no_auth)
        outcome = run(
            points, commit=commit, remotes=remotes, params=params, cpus=args.cpus, where=where, claim=claimed, stop=stop
        )
    except GridError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # while the cluster started: no task yet
        print("\ngrid: interrupted before any task", file=sys.stderr)
        outcome.interrupted = True
    finally:
        stop.hold()  # from here on a signal is said, not raised: the claim must end
        if "ray" in sys.modules:
            sys.modules["ray"].shutdown()
        if is_local(args.address or os.environ.get("RAY_ADDRESS")):  # this machine is the node: its workers are gone
            try:
                sweep(clones_dir())
            except GridError as err:
                print(f"error: {err}", file=sys.stderr)
        release(root, remotes, claimed)
    code = INTERRUPTED if outcome.interrupted or stop.count else 0
    if outcome.finished:
        try:
            pull(root, remotes, commit, outcome.finished, replaced=claimed.leases)
        except GridError as err:
            print(f"error: {err}", file=sys.stderr)
            return code or 1
        print(f"grid: pulled {', '.join(sorted(outcome.finished))}; `dvc exp show` lists them")
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(table(root, points, outcome.states).to_string())
    failed = sum(state in ("failed", "push failed") for state in outcome.states.values())
    if failed:
        print(f"grid: {failed} of {len(points)} points failed (above, each with the end of its log)", file=sys.stderr)
    return code or (1 if failed or len(outcome.finished) < len(points) else 0)


if __name__ == "__main__":
    sys.exit(main())
