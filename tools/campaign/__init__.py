"""A campaign of DVC experiments on a Ray cluster: one `dvc exp run` per point, on any node.

    python -m tools.campaign -S 'ae.lr=3e-4,1e-3,3e-3' -S 'dataset=mnist,fashion-mnist'

`-S` takes DVC's own grid syntax and expansion (Hydra sweeps, as `dvc exp run --queue -S`).
Before any task the campaign claims its name on the git remote (refs/campaigns/NAME, pushed without
force: of two campaigns started at once with one name, one is refused); names that already exist
there or here are refused unless the same campaign is run again (then its finished points are kept
and the others run) or `--replace` is given. Each point is a Ray task that clones the git
remote at this commit into the node's temporary directory, shares the node's DVC cache,
runs `dvc exp run --pull -n NAME -S ...`, then pushes, retrying with backoff: first the outputs
and run-cache entries to the DVC remote, last the experiment's ref to the git remote (so no ref
there lacks its outputs). A point whose push still fails keeps its clone and names the command
that finishes it. The driver prints a status line per running point, pulls the finished
experiments by full ref and ends with a table of the campaign: varying params beside metrics.

With no --address (nor RAY_ADDRESS), or with `local`, the cluster is a local one on this
machine that listens on 127.0.0.1 alone, with token auth: whoever reaches a Ray cluster can
run code on it (CVE-2023-48022).

Its parts, by job: `points` (the `-S` expansion and each point's params checked),
`repository` (the baseline, the claim on the name, the pull back), `node` (one point: its
clone, run and push), `cluster` (joining or starting Ray, its token), `driver` (the tasks,
their status, the signals), `results` (the table) and `cli`.
"""


class CampaignError(Exception):
    """A campaign that cannot start: one line naming what to fix (exit 2, before any task)."""


# After CampaignError, which each of them imports: `from tools import campaign` then reaches every part.
from tools.campaign import cli, cluster, driver, node, points, repository, results  # noqa: E402

__all__ = ["CampaignError", "cli", "cluster", "driver", "node", "points", "repository", "results"]
