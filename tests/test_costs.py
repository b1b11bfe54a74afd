"""README.md's table of what a change costs is the one tools/costs.py derives from dvc.yaml."""

import subprocess
import sys

from harness.e2e import TRAINING
from tools.costs import GROUPS, ROOT, readme_block, reruns


def test_the_readme_holds_the_table_tools_costs_prints():
    done = subprocess.run([sys.executable, "-m", "tools.costs"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert readme_block((ROOT / "README.md").read_text()) == done.stdout.rstrip("\n"), (
        "README.md's costs table is stale: paste in the output of `python -m tools.costs`"
    )


def test_what_a_figure_shows_reruns_no_training():
    table = reruns()
    assert set(table) == set(GROUPS)
    for group in ("`latent_grid.*`", "`prior_grid.*`", "`sample.count`"):
        assert table[group] and not {name.split("@")[0] for name in table[group]} & TRAINING, group


def test_downstream_stages_rerun_too():
    """sweep.* is listed by sweep alone; report reads the sweep's metrics, so it reruns as well."""
    assert reruns()["`sweep.*`"] == ["sweep", "report"]
