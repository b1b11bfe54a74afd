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
    "`fresh.*`": ["fresh"],
}


def overlaps(a: str, b: str) -> bool:
    """Whether two keys share a leaf: equal, or one a block holding the other."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def reruns(root: Path = ROOT) -> dict[str, tuple[list[str], list[str]]]:
    """Group -> the stages a change to it may rerun, each list in dvc.yaml's order: those that
    list one of its keys (a change reruns those that list the key changed), and those downstream
    of them, which DVC reruns only where an input's bytes changed (a new sample count redraws the
    samples' figure, which no later stage reads, so `sample` alone reruns)."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        graph, stages = repo.index.graph, list(repo.index.stages)
        table = {}
        for group, keys in GROUPS.items():
            read = {
                stage
                for stage in stages
                for dep in stage.params
                for listed in dep.params
                if any(overlaps(listed, key) for key in keys)
            }
            # Edges point upstream. A stage's name, not its address, which names dvc.yaml's
            # path when the repository is not the working folder.
            downstream = {after for stage in read for after in nx.ancestors(graph, stage)} - read
            if any(stage.name == "download" for stage in read):  # another data set: new bytes everywhere
                read, downstream = read | downstream, set()
            table[group] = ([s.name for s in stages if s in read], [s.name for s in stages if s in downstream])
    return table


def collapse(names: list[str]) -> list[str]:
    """``train_ae@1, train_ae@2, train_ae@3`` as ``train_ae@1..3`` (a matrix stage's instances)."""
    shown: dict[str, list[str]] = {}
    for name in names:
        shown.setdefault(name.split("@")[0], []).append(name.partition("@")[2])
    return [f"{base}@{items[0]}..{items[-1]}" if len(items) > 1 else f"{base}{'@' * bool(items[0])}{items[0]}"
            for base, items in shown.items()]  # fmt: skip


def measured(root: Path = ROOT) -> dict:
    """benchmarks/stage_times.json: each stage's wall seconds and the run that timed it."""
    return json.loads((root / TIMES.relative_to(ROOT)).read_text())


def stage_seconds(times: dict) -> dict[str, float]:
    """Each stage's measured wall seconds, from :func:`measured`'s record."""
    return {name: entry["seconds"] for name, entry in times["stages"].items()}


def table(root: Path = ROOT) -> str:
    times = measured(root)
    seconds = stage_seconds(times)
    lines = [
        "| change | stages that read its keys | downstream, where their inputs changed | minutes, at most |",
        "| --- | --- | --- | --- |",
    ]
    for group, (read, downstream) in reruns(root).items():
        names = read + downstream
        untimed = [n for n in names if n not in seconds]
        minutes = f"{sum(seconds.get(n, 0.0) for n in names) / 60:.1f}"
        if untimed:
            minutes += f" + {', '.join(untimed)} (not timed)"
        lines.append(f"| {group} | {', '.join(collapse(read))} | {', '.join(collapse(downstream))} | {minutes} |")
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
