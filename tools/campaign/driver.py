"""The driver: every point as a Ray task, status lines, and SIGINT, SIGTERM and SIGHUP as Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tools.campaign import CampaignError
from tools.campaign.node import Board, run_point
from tools.campaign.points import Point, exp_ref
from tools.campaign.repository import Claim, Remotes

LOG_TAIL = 25  # lines of a failed point's log that the driver shows; the whole log goes to LOGS


LOGS = "campaign-logs"  # failed points' full logs, beside the driver (gitignored)


STATUS_S = 10  # a running point's status line at most this often


HEARTBEAT_S = 60  # and at least this often, changed or not


RETRIES = 3  # Ray reruns a point whose worker or node was lost (not one that failed)


CANCEL_S = 30  # after Ctrl-C, how long cancelled points have to stop and clean up


def report(index: int, total: int, point: Point, result: dict) -> str:
    head = f"[{index}/{total}] {point.name} ({point})"
    held = [f"{result['resources']['CPU']:g} CPU"] if "CPU" in result.get("resources", {}) else []
    held += [f"GPU {','.join(result['gpus'])}"] if result.get("gpus") else []
    where = f"{result['seconds']:.0f} s on node {result['node']}" + (f" with {', '.join(held)}" if held else "")
    where += f" at nice {result['nice']}" if result.get("nice") else ""  # a niced point is slow beside other work
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
        + (f"; pushed in {result['push_s']:.1f} s" if "push_s" in result else "")
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
    would leave the claim "running" and the finished points unpulled. Within `booking` the
    first waits for the section's end: a point half booked would count as running, then end
    a second time, or as cancelled."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self):
        self.count = 0
        self.first = ""  # the signal that stopped the campaign
        self.held = False
        self.booking_now = False
        self.waiting = False  # a first signal that came while booking
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

    @contextlib.contextmanager
    def booking(self):
        self.booking_now = True
        try:
            yield
        finally:
            self.booking_now = False
        if self.waiting and not self.held:
            self.waiting = False
            raise KeyboardInterrupt(self.first)

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
            if self.booking_now:
                self.waiting = True
                return
            raise KeyboardInterrupt(name)
        # os.write: a print here could land inside another print, which Python refuses.
        with contextlib.suppress(OSError):
            os.write(2, f"\ncampaign: {name}: stopping already (finished points pulled, claim ended)\n".encode())


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

    stop = stop if stop is not None else Stop()  # not entered: it sees no signal, and books as it goes
    has_gpu = bool(ray.cluster_resources().get("GPU"))
    gpu = {p.name for p in points if params[p.name].device.startswith("cuda")}
    if gpu and not has_gpu:
        raise CampaignError(f"device cuda in {', '.join(sorted(gpu))}, but {where} has no GPU")
    if has_gpu:  # `auto` takes a GPU where one exists: ask Ray for one, or points pile onto GPU 0
        gpu |= {p.name for p in points if params[p.name].device == "auto"}
    # By value, as a script's own functions go: the nodes need not have these modules on their path.
    ray.cloudpickle.register_pickle_by_value(sys.modules["tools.campaign"])
    ray.cloudpickle.register_pickle_by_value(sys.modules["stages.lib.progress"])
    ray.cloudpickle.register_pickle_by_value(sys.modules["tools.push"])
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
        f"campaign: {len(todo)} points of commit {commit[:7]} on {where} ({cores:g} CPUs, {gpus:g} GPUs; "
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
                with stop.booking():  # its line, its state and its leaving `pending`: all or none
                    ended(ref, pending[ref])
                    del pending[ref]
            now = time.monotonic()
            if pending and now - last >= STATUS_S:
                try:
                    status = ray.get(board.get.remote(), timeout=STATUS_S)
                except RayError as err:  # the board is only for show: the points run on without it
                    status = {}
                    print(f"campaign: no status this time ({type(err).__name__})", flush=True)
                for point in pending.values():
                    text = status.get(point.name, "waiting for a node")
                    if shown.get(point.name, (None, 0))[0] != text or now - shown[point.name][1] >= HEARTBEAT_S:
                        print(f"campaign: {point.name} {text} ({now - start:.0f} s)", flush=True)
                        shown[point.name] = (text, now)
                last = now
    except KeyboardInterrupt:  # Ray re-raises it bare from its waits: the signal's name is in `stop`
        stop.hold()
        why = stop.first or "SIGINT"
        outcome.interrupted = True
        print(
            f"\ncampaign: interrupted: cancelling {len(pending)} running points ({why})",
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
