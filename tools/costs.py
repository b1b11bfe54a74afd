"""What a change costs: for each group of params, the stages a change to it reruns (downstream
included) and the minutes they take.

The stages come from dvc.yaml through DVC's own stage graph (matrix stages expanded with
params.yaml's values); the times from benchmarks/stage_times.json, measured stage times that
name their machine and commit. `python -m tools.costs` prints the Markdown table that README.md
holds between its costs markers (tests/test_costs.py fails when the two differ).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMES = ROOT / "benchmarks" / "stage_times.json"
# The groups a change is made in, as their keys in params.yaml.
GROUPS = {
    "`dataset`": ["dataset"],
    "`device`, `precision`": ["device", "precision"],
    "`ae.*`": ["ae"],
    "`latent_grid.*`": ["latent_grid"],
    "`pca.*`": ["pca"],
    "`sweep.*`": ["sweep"],
    "`vae.*`": ["vae"],
    "`prior_grid.*`": ["prior_grid"],
    "`classifier.*`": ["classifier"],
    "`sample.count`": ["sample.count"],
    "`sample.score_count`, `sample.seeds`": ["sample.score_count", "sample.seeds"],
    "`robustness.*`": ["robustness"],
}


def overlaps(a: str, b: str) -> bool:
    """Whether two keys share a leaf: equal, or one a block holding the other."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def reruns(root: Path = ROOT) -> dict[str, list[str]]:
    """Group -> the stages a change to it reruns, in dvc.yaml's order: every stage that lists
    one of its keys, and every stage downstream of those."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        graph, stages = repo.index.graph, list(repo.index.stages)
        table = {}
        for group, keys in GROUPS.items():
            hit = {
                stage
                for stage in stages
                for dep in stage.params
                for listed in dep.params
                if any(overlaps(listed, key) for key in keys)
            }
            hit |= {after for stage in hit for after in nx.ancestors(graph, stage)}  # edges point upstream
            table[group] = [stage.addressing for stage in stages if stage in hit]
    return table


def collapse(names: list[str]) -> list[str]:
    """``train_ae@1, train_ae@2, train_ae@3`` as ``train_ae@1..3`` (a matrix stage's instances)."""
    shown: dict[str, list[str]] = {}
    for name in names:
        shown.setdefault(name.split("@")[0], []).append(name.partition("@")[2])
    return [f"{base}@{items[0]}..{items[-1]}" if len(items) > 1 else f"{base}{'@' * bool(items[0])}{items[0]}"
            for base, items in shown.items()]  # fmt: skip


def stage_seconds(root: Path = ROOT) -> dict[str, float]:
    """Each stage's measured wall seconds, from benchmarks/stage_times.json."""
    times = json.loads((root / TIMES.relative_to(ROOT)).read_text())
    return {name: entry["seconds"] for name, entry in times["stages"].items()}


def table(root: Path = ROOT) -> str:
    times = json.loads((root / TIMES.relative_to(ROOT)).read_text())
    seconds = stage_seconds(root)
    lines = [
        "| change | stages it reruns | minutes |",
        "| --- | --- | --- |",
    ]
    for group, names in reruns(root).items():
        untimed = [n for n in names if n not in seconds]
        minutes = f"{sum(seconds.get(n, 0.0) for n in names) / 60:.1f}"
        if untimed:
            minutes += f" + {', '.join(untimed)} (not timed)"
        lines.append(f"| {group} | {', '.join(collapse(names))} | {minutes} |")
    runs = sorted({entry["run"] for entry in times["stages"].values()})
    source = "([benchmarks/stage_times.json](benchmarks/stage_times.json))"
    lines += ["", f"Stage times: {'; '.join(times['runs'][r] for r in runs)} {source}."]
    return "\n".join(lines)


BEGIN, END = "<!-- costs:begin -->", "<!-- costs:end -->"


def readme_block(text: str) -> str:
    """The part of README.md between the costs markers."""
    match = re.search(re.escape(BEGIN) + r"\n(.*?)\n" + re.escape(END), text, re.DOTALL)
    assert match, f"README.md lacks the lines {BEGIN} and {END}"
    return match.group(1)


if __name__ == "__main__":
    print(table())
