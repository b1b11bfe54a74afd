"""`python -m tools.campaign`: from the check to the table."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from tools.campaign import CampaignError
from tools.campaign.cluster import connect, is_local, shutdown
from tools.campaign.driver import Outcome, Stop, run
from tools.campaign.node import clones_dir, push_point, sweep
from tools.campaign.points import check, expand
from tools.campaign.repository import baseline, claim, pull, release
from tools.campaign.results import table

INTERRUPTED = 130


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.campaign",
        description="Run a campaign of `dvc exp run` on a Ray cluster; results return through the git and DVC remotes.",
    )
    parser.add_argument(
        "-S", "--set-param", action="append", metavar="[FILE:]KEY=V1,V2,...",
        help="a param and its values, in `dvc exp run -S` syntax; several -S make a product",
    )  # fmt: skip
    parser.add_argument(
        "-n", "--name", help="experiments are named NAME-1..N (default: campaign-<digest of the campaign>)"
    )
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
        return run_campaign(args, stop)


def run_campaign(args: argparse.Namespace, stop: Stop) -> int:
    """The campaign, from its check to its table, with SIGINT, SIGTERM and SIGHUP handled by `stop`."""
    root = Path.cwd()
    try:
        points = expand(args.set_param, args.name)
        params = check(points, root)
        commit, remotes = baseline(root, args.git_remote)
        claimed = claim(root, remotes, commit, points, replace=args.replace)
    except CampaignError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # no task yet; a claim pushed just now is taken over by a rerun
        print("\ncampaign: interrupted before any task", file=sys.stderr)
        return INTERRUPTED
    if claimed.note:
        print(f"campaign: {claimed.note}", flush=True)
    outcome = Outcome(finished=dict(claimed.done), states=dict.fromkeys(claimed.done, "done before"))
    try:
        where = connect(args.address, no_auth=args.no_auth)
        outcome = run(
            points, commit=commit, remotes=remotes, params=params, cpus=args.cpus, where=where, claim=claimed, stop=stop
        )
    except CampaignError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # while the cluster started: no task yet
        print("\ncampaign: interrupted before any task", file=sys.stderr)
        outcome.interrupted = True
    finally:
        stop.hold()  # from here on a signal is said, not raised: the claim must end
        shutdown()
        if is_local(args.address or os.environ.get("RAY_ADDRESS")):  # this machine is the node: its workers are gone
            try:
                sweep(clones_dir())
            except CampaignError as err:
                print(f"error: {err}", file=sys.stderr)
        release(root, remotes, claimed)
    code = INTERRUPTED if outcome.interrupted or stop.count else 0
    if outcome.finished:
        try:
            pull(root, remotes, commit, outcome.finished, replaced=claimed.leases)
        except CampaignError as err:
            print(f"error: {err}", file=sys.stderr)
            return code or 1
        print(f"campaign: pulled {', '.join(sorted(outcome.finished))}; `dvc exp show` lists them")
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(table(root, points, outcome.states).to_string())
    failed = sum(state in ("failed", "push failed") for state in outcome.states.values())
    if failed:
        print(
            f"campaign: {failed} of {len(points)} points failed (above, each with the end of its log)", file=sys.stderr
        )
    return code or (1 if failed or len(outcome.finished) < len(points) else 0)
