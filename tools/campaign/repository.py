"""The campaign's git side: the baseline commit and remotes, the claim on the campaign's name, the pull back."""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tools.campaign import CampaignError
from tools.campaign.points import CLAIMS, EXPS, Point, exp_ref


@dataclass(frozen=True)
class Remotes:
    git: str  # the git remote's name here
    git_url: str  # where the nodes clone from and push experiments to
    dvc: str  # the DVC remote's name
    dvc_url: str  # where the nodes pull data and push outputs and the run cache


def git(root: Path, *args: str, env: dict | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, env=env)
    if done.returncode:
        raise CampaignError(f"git {' '.join(args)}: {done.stderr.strip()}")
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
    every user of a node), the logs, `campaign-logs/`, the tasks' arguments and point.json."""
    if userinfo(url):
        raise CampaignError(
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
        raise CampaignError(f"uncommitted changes ({files}): the points run commit {commit[:7]}; commit them first")
    if git_remote not in git(root, "remote").split():
        raise CampaignError(f"no git remote {git_remote!r}: the nodes clone the repository from it (git remote add)")
    git_url = _absolute(git(root, "remote", "get-url", git_remote), root)
    refuse_credentials(git_url, f"git remote {git_remote!r}", "git remote set-url, and a git credential helper")
    git(root, "fetch", "-q", git_remote)
    if not git(root, "branch", "-r", "--contains", commit, "--list", f"{git_remote}/*"):
        raise CampaignError(f"commit {commit[:7]} is not on git remote {git_remote!r}: git push it first")
    with Repo(str(root)) as repo:
        dvc_remote = repo.config["core"].get("remote")
        if not dvc_remote:
            raise CampaignError("no default DVC remote: dvc remote add -d NAME URL (the nodes pull data through it)")
        dvc_url = _absolute(str(repo.config["remote"][dvc_remote]["url"]), root / ".dvc")
    refuse_credentials(
        dvc_url, f"DVC remote {dvc_remote!r}", "dvc remote modify, and credentials in each node's DVC --local config"
    )
    return commit, Remotes(git=git_remote, git_url=git_url, dvc=dvc_remote, dvc_url=dvc_url)


@dataclass(frozen=True)
class Claim:
    done: dict[str, str]  # points already on the git remote from an earlier run of this campaign: name -> commit
    leases: dict[str, str]  # each point's ref -> the commit it may replace there ("": none)
    ref: str = field(default="", compare=False)  # refs/campaigns/NAME
    commit: str = field(default="", compare=False)  # the claim pushed there, "state: running"
    message: str = field(default="", compare=False)
    note: str = field(default="", compare=False)  # said before the campaign runs: a stale claim taken over


def parse_refs(lines: str) -> dict[str, str]:
    return {ref: sha for sha, ref in (line.split() for line in lines.splitlines() if line.strip())}


def local_refs(root: Path, *patterns: str) -> dict[str, str]:
    """This clone's refs that match ``patterns`` (none: no refs), each to its commit."""
    if not patterns:
        return {}
    return parse_refs(git(root, "for-each-ref", "--format=%(objectname) %(refname)", *patterns))


def claim(root: Path, remotes: Remotes, commit: str, points: list[Point], *, replace: bool) -> Claim:
    """Claim the campaign's name on the git remote before any task, so that nothing overwrites.

    Refused: names of experiments that exist on the remote or here (any baseline), unless
    this same campaign (commit, names, params) claimed them before, which resumes it, or unless
    `replace`. The claim is a commit pushed to refs/campaigns/NAME without force: if another campaign
    pushed its own meanwhile, git refuses ours (not a fast-forward), so of two campaigns started
    at once with one name, one goes on and the other stops here."""
    campaign = points[0].name.rsplit("-", 1)[0]
    names = {p.name for p in points}
    digest = hashlib.sha256(repr((commit, [(p.name, p.overrides) for p in points])).encode()).hexdigest()
    claim_ref = f"{CLAIMS}/{campaign}"
    remote = parse_refs(git(root, "ls-remote", remotes.git_url, f"{EXPS}/*", claim_ref))
    here = local_refs(root, EXPS)
    on_remote = {ref: sha for ref, sha in remote.items() if ref.startswith(EXPS) and ref.rsplit("/", 1)[1] in names}
    ours = {exp_ref(commit, p.name) for p in points}
    previous = remote.get(claim_ref, "")
    same_campaign, note = False, ""
    if previous:
        git(root, "fetch", "-q", remotes.git_url, claim_ref)
        said = git(root, "log", "-1", "--format=%B", "FETCH_HEAD")
        same_campaign = f"digest: {digest}" in said
        started = re.search(r"^started: (.*)$", said, re.MULTILINE)
        if same_campaign and "state: running" in said and not replace and stale(started.group(1) if started else ""):
            note = f"taking over {claim_ref}, whose driver is gone ({started.group(1)}): its finished points are kept"
        elif same_campaign and "state: running" in said and not replace:
            raise CampaignError(
                f"campaign {campaign!r} is running ({claim_ref} on git remote {remotes.git!r}: started by "
                f"{started.group(1) if started else '?'}): wait for it to end, or --replace if its driver is gone"
            )
    done = {ref.rsplit("/", 1)[1]: sha for ref, sha in on_remote.items() if same_campaign and ref in ours}
    clashes = {ref.rsplit("/", 1)[1] for ref in on_remote if ref.rsplit("/", 1)[1] not in done}
    # Here, a name is fine where it is a point of this campaign pulled from the remote, same commit.
    clashes |= {
        ref.rsplit("/", 1)[1]
        for ref, sha in here.items()
        if ref.rsplit("/", 1)[1] in names and done.get(ref.rsplit("/", 1)[1]) != sha
    }
    if previous and not same_campaign and not replace:
        raise CampaignError(
            f"campaign name {campaign!r} is taken on git remote {remotes.git!r} by another campaign ({claim_ref}): "
            "choose another -n, or --replace to replace its experiments"
        )
    if clashes and not replace:
        raise CampaignError(
            f"experiments {', '.join(sorted(clashes))} already exist on git remote {remotes.git!r} or here: "
            "choose another -n, or --replace to replace them"
        )
    if replace:
        done = {}
    message = f"campaign {campaign}\n\ndigest: {digest}\nstarted: {stamp()}\nstate: running\n" + "".join(
        f"{p.name}: {p}\n" for p in points
    )
    ident = {"GIT_AUTHOR_NAME": "tools.campaign", "GIT_AUTHOR_EMAIL": "campaign@localhost"}
    ident |= {"GIT_COMMITTER_NAME": "tools.campaign", "GIT_COMMITTER_EMAIL": "campaign@localhost"}
    parent = previous if same_campaign and not replace else commit  # a resumed campaign fast-forwards its claim
    mine = git(root, "commit-tree", f"{commit}^{{tree}}", "-p", parent, "-m", message, env={**os.environ, **ident})
    lease = f"--force-with-lease={claim_ref}:{previous if replace else parent if same_campaign else ''}"
    try:
        git(root, "push", "-q", lease, remotes.git_url, f"{mine}:{claim_ref}")
    except CampaignError:
        raise CampaignError(
            f"campaign name {campaign!r} was claimed on git remote {remotes.git!r} by another campaign meanwhile "
            f"({claim_ref} moved): choose another -n"
        ) from None
    leases = {ref: remote.get(ref, "") if replace else "" for ref in ours}
    return Claim(done=done, leases=leases, ref=claim_ref, commit=mine, message=message, note=note)


def stamp() -> str:
    """Who claims a campaign: user@host, pid, time, and a nonce (two claims never read the same)."""
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
    """Mark the campaign's claim ended (a fast-forward of our own claim): the same campaign may then
    run again, keeping its finished points. Best effort: a campaign whose claim stays running is
    refused until --replace."""
    ident = {"GIT_AUTHOR_NAME": "tools.campaign", "GIT_AUTHOR_EMAIL": "campaign@localhost"}
    ident |= {"GIT_COMMITTER_NAME": "tools.campaign", "GIT_COMMITTER_EMAIL": "campaign@localhost"}
    message = claim.message.replace("state: running", "state: ended")
    with contextlib.suppress(CampaignError):
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


def pull(root: Path, remotes: Remotes, commit: str, finished: dict[str, str], *, replaced: dict[str, str]) -> None:
    """The finished experiments, by full ref (a name could match another baseline's), each
    checked to be the commit its point pushed. Nothing is forced: a ref here of the same name
    moves only where it is the commit the campaign replaced on the remote (`replaced`, the claim's
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
            raise CampaignError(f"{' '.join(cmd[2:])} failed:\n{done.stdout}{done.stderr}")
    here = local_refs(root, *wanted)
    wrong = [name for name, ref in refs.items() if name not in kept and here.get(ref) != finished[name]]
    if wrong:
        raise CampaignError(f"experiments {', '.join(sorted(wrong))} here are not the commits the campaign pushed")
    if kept:
        raise CampaignError(
            f"experiments {', '.join(kept)} here are commits of this clone that the campaign did not replace: kept; "
            f"`dvc exp pull --force {remotes.git} NAME` takes the campaign's instead"
        )
