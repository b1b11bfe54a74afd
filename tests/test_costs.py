"""README.md's table of what a change costs is the one tools/costs.py derives from dvc.yaml."""

import re
import subprocess
import sys

import yaml

from harness.e2e import TRAINING
from tools.costs import GROUPS, ROOT, measured, readme_block, reruns, stage_seconds


def test_the_readme_holds_the_table_tools_costs_prints():
    done = subprocess.run([sys.executable, "-m", "tools.costs"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert readme_block((ROOT / "README.md").read_text()) == done.stdout.rstrip("\n"), (
        "README.md's costs table is stale: paste in the output of `python -m tools.costs`"
    )


def test_every_group_names_keys_params_yaml_has_and_some_stage_reads():
    """A renamed params block leaves no row behind that reruns nothing."""
    params, table = yaml.safe_load((ROOT / "params.yaml").read_text()), reruns()
    for group, keys in GROUPS.items():
        for key in keys:
            block, _, leaf = key.partition(".")
            assert block in params and (not leaf or leaf in params[block]), (group, key)
        assert table[group][0], group


def test_what_a_figure_shows_reruns_no_training():
    table = reruns()
    assert set(table) == set(GROUPS)
    for group in ("`latent_grid.*`", "`prior_grid.*`", "`sample.count`"):
        read, downstream = table[group]
        assert read and not {name.split("@")[0] for name in read + downstream} & TRAINING, group


def test_stages_downstream_are_apart_from_those_that_read_the_change():
    """sample.count is read by sample alone; robustness and report read the samples' scores,
    which may not change. A data set changes every stage's input: all of them rerun."""
    table = reruns()
    assert table["`sample.count`"] == (["sample"], ["robustness", "report"])
    read, downstream = table["`dataset`"]
    assert read[0] == "download" and "sweep" in read and not downstream


def test_the_readmes_headline_time_is_the_measured_full_study():
    """ "It takes about N minutes" is the `dataset` row (every stage); "M of those minutes train
    and pool the fresh seeds" is train_fresh and robustness."""
    readme = (ROOT / "README.md").read_text()
    found = re.search(
        r"about \*\*(\d+) minutes on 2 CPU cores\*\*.*?; (\d+) of those minutes train and pool", readme, re.S
    )
    assert found, "README.md's quick start lost its headline time"
    seconds = stage_seconds(measured())
    every = sum(seconds[name] for name in reruns()["`dataset`"][0])
    assert int(found.group(1)) == round(every / 60)
    assert int(found.group(2)) == round((seconds["train_fresh"] + seconds["robustness"]) / 60)
