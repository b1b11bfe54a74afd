"""The Ray cluster: a local one on loopback with a private token, or one joined with token auth."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

from tools.campaign import CampaignError

# Tasks pass a few strings each way; Ray's default store (30% of RAM) would only hold memory.
LOCAL_OBJECT_STORE = 128 * 2**20
_SESSIONS: list[str] = []  # the local cluster's private folder, while it runs (:func:`shutdown`)


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
            raise CampaignError(
                f"the Ray cluster at {address} is joined without token auth: whoever reaches it runs code "
                "on it; start its nodes and this campaign with RAY_AUTH_MODE=token, or give --no-auth where "
                "no one else reaches the cluster"
            )
        if not no_auth and not os.environ.get("RAY_AUTH_TOKEN") and os.path.lexists(token_path()):
            private_token(token_path())
        import ray

        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError) as err:
            raise CampaignError(f"no Ray cluster reached at {address}: {str(err).splitlines()[0]}") from None
        return f"the Ray cluster at {address}" + (" (no auth: --no-auth)" if no_auth else " (token auth)")
    # Ray on Linux replaces 127.0.0.1 by the machine's own address, and its servers then listen
    # on every address; the setting meant for a laptop's single-machine Ray keeps it on
    # loopback. Ray reads it once, when first imported.
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.pop("RAY_ADDRESS", None)  # `local` there would also reach ray.init
    # Ray starts its workers at nice 15, and a point's commands inherit it: beside any other
    # work on the machine a point's training and push starve (benchmarks/README.md). A point is
    # the user's own run, as `dvc exp run` typed in a shell is; a nicer one can be asked for.
    os.environ.setdefault("RAY_worker_niceness", "0")
    token = auth_token()
    os.environ["RAY_AUTH_MODE"] = "token"  # whatever this shell says: every local user reaches 127.0.0.1
    import ray

    # Ray keeps a node's logs and sockets in /tmp/ray, which it makes writable by every user
    # (so are the folders it makes under any --temp-dir): another user could read the logs or
    # replace a socket. Inside a folder of this user's alone, no one else reaches them.
    _SESSIONS.append(tempfile.mkdtemp(prefix="campaign-ray-"))
    ray.init(address="local", include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE,
             _temp_dir=os.path.join(_SESSIONS[-1], "ray"), **quiet)  # fmt: skip
    wide = [f"{ip}:{port}" for ip, port in listening() if not loopback(ip)]
    if wide:
        shutdown()
        raise CampaignError(f"the local Ray cluster listens on {', '.join(sorted(wide))}, not 127.0.0.1 alone")
    return f"a local Ray cluster at {ray.get_runtime_context().gcs_address} (token auth, {token})"


def shutdown() -> None:
    """Leave the cluster; a local one stops, and its private folder goes with it."""
    if "ray" in sys.modules:
        sys.modules["ray"].shutdown()
    while _SESSIONS:
        shutil.rmtree(_SESSIONS.pop(), ignore_errors=True)


def token_path() -> Path:
    return Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")


def auth_token() -> str:
    """Where the local cluster's token comes from; one is made, readable by this user alone,
    where none exists (Ray would write it readable by every user). Of two campaigns making it at
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
            with contextlib.suppress(FileExistsError):  # another campaign's, made meanwhile
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
        raise CampaignError(f"token file {path} is not a file: remove it (a new token is made)")
    found = path.stat()
    if found.st_uid != os.getuid():
        raise CampaignError(f"token file {path} belongs to uid {found.st_uid}, not to this user: remove it")
    if found.st_mode & 0o077:
        raise CampaignError(
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
