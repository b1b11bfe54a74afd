"""The campaign's table: varying params beside headline metrics and the verdicts held."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tools.campaign.points import PARAMS_FILE, Point

HEADLINE = {  # metrics file: key -> column
    "metrics/vae.json": {"test_loss": "vae test_loss"},
    "metrics/pca.json": {"test_mse": "pca test_mse"},
    "metrics/study.json": {"ae_runs.test_mse.mean": "ae test_mse"},
}


def table(root: Path, points: list[Point], states: dict[str, str]):
    """The campaign's points: the params that vary, the headline metrics and the verdicts held,
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
