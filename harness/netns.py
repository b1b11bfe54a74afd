"""A network namespace of its own for Ray: loopback only, so every node reports 127.0.0.1 and no
connection leaves it. Outside one, Ray on Linux turns 127.0.0.1 into the machine's interface
address and its nodes talk over that; no test or benchmark here may do so."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

RAY = str(Path(sys.executable).parent / "ray")
# Ray's environment in every namespace here: no usage report, a small object store (tasks here
# pass a few strings; the default is 30% of RAM per node).
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DEFAULT_OBJECT_STORE_MAX_MEMORY_BYTES": str(100 * 2**20)}


def refused() -> str | None:
    """Why a namespace cannot be made here, or None."""
    for tool in ("unshare", "nsenter", "ip", "ss"):
        if not shutil.which(tool):
            return f"{tool} not found"
    done = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    return f"unshare -n refused: {done.stderr.strip()}" if done.returncode else None


needs_netns = pytest.mark.skipif(bool(refused()), reason=f"no network namespace: {refused()}")


@contextmanager
def namespace(other_address: str | None = None) -> Iterator[list[str]]:
    """A new network namespace with loopback up, held open by a sleeping process; yields the
    prefix that runs a command inside it. `other_address` adds an interface with that address
    and a default route through it (nothing answers there), so that software which picks an
    address by itself would find one besides 127.0.0.1.

    At the end, whatever happened, every process inside is stopped: Ray's nodes and workers
    with them. `ray stop` would do that for every Ray process on the machine, those of a test
    running beside this one included."""
    setup = "ip link set lo up"
    if other_address:
        setup += (
            " && ip link add ray0 type veth peer name ray1 && ip link set ray0 up && ip link set ray1 up"
            f" && ip addr add {other_address}/24 dev ray0"
            f" && ip route add default via {other_address.rsplit('.', 1)[0]}.254 dev ray0"
        )
    holder = subprocess.Popen(
        ["unshare", "-n", "--", "sh", "-c", f"{setup} && echo ready && exec sleep 3600"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready", "the namespace could not be set up"
        yield ["nsenter", f"--net=/proc/{holder.pid}/ns/net", "--"]
    finally:
        stop_everything_inside(holder)


def members(net: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.readlink(entry / "ns" / "net") == net:
                pids.append(int(entry.name))
        except OSError:  # ended meanwhile
            pass
    return pids


def stop_everything_inside(holder: subprocess.Popen) -> None:
    """SIGTERM to every process in the holder's namespace, SIGKILL after 10 s to what is left."""
    net = os.readlink(f"/proc/{holder.pid}/ns/net")
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        for pid in members(net):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        holder.poll()
        deadline = time.monotonic() + wait
        while members(net) and time.monotonic() < deadline:
            time.sleep(0.1)
            holder.poll()


def listening(inside: list[str]) -> list[str]:
    """The local address:port of every listening TCP socket in the namespace."""
    done = subprocess.run([*inside, "ss", "-ltnH"], capture_output=True, text=True, check=True)
    return [line.split()[3] for line in done.stdout.splitlines()]


def on_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "::ffff:127.0.0.1")
