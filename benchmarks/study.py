"""The full study from scratch: `dvc repro` in a fresh clone; per stage, wall time, training
time, the rest (start-up and host work), and peak memory, beside `import torch` timed in the
same run.

Clones the committed HEAD (or --rev) into a scratch folder, wraps each stage command with
benchmarks.timed (this checkout's, whatever the revision), runs `dvc repro` (with any
`-S key=value` overrides applied to params.yaml first), then times a no-op `dvc repro`. With
--copy, or where there is no git history to clone, it copies the working tree less every
output and cache instead, and runs DVC without git: a lent GPU machine gets the working
tree, but its git history need not match it.

    MNIST_MIRROR=../shared/mnist python -m benchmarks.study [--rev REV] [-S ae.epochs=2 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dvc.utils.hydra import apply_overrides

# Never copied: outputs, caches and local environments (DVC must rebuild every output).
SKIP_NAMES = {".git", ".venv", ".whl", ".mnist", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"}
SKIP_PATHS = {"data/idx", "models", ".dvc/cache", ".dvc/tmp", "plots/samples"}


def scratch_copy(root: Path, repo: Path, copy: bool, rev: str) -> bool:
    """Clone ``rev`` into ``repo``, or copy the working tree (``copy``, or no history to clone).

    Returns whether DVC must run without git.
    """
    if not copy and shutil.which("git") and (root / ".git").exists():
        subprocess.run(["git", "clone", "-q", str(root), str(repo)], check=True)
        subprocess.run(["git", "checkout", "-q", rev], cwd=repo, check=True)
        return False

    def skip(folder: str, names: list[str]) -> set[str]:
        rel = Path(folder).relative_to(root)
        return {n for n in names if n in SKIP_NAMES or n.endswith(".png") or (rel / n).as_posix() in SKIP_PATHS}

    shutil.copytree(root, repo, ignore=skip)
    return True


def timed_command(command: list[str], **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, **kwargs)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-S", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--copy", action="store_true", help="copy the working tree instead of cloning HEAD")
    parser.add_argument("--rev", default="HEAD", help="the commit to clone and run (default HEAD)")
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    scratch = Path(tempfile.mkdtemp(prefix="study-bench-"))
    repo = scratch / "repo"
    no_scm = scratch_copy(root, repo, args.copy, args.rev)
    print(f"study from {'a copy of the working tree' if no_scm else f'a clone of {args.rev}'}: {repo}", flush=True)
    import_torch = sorted(
        timed_command([sys.executable, "-c", "import torch"], cwd=repo, env=os.environ) for _ in range(3)
    )[1]
    dvc_yaml = repo / "dvc.yaml"
    wrapper = f"cmd: python {root / 'benchmarks' / 'timed.py'} python -m stages."
    dvc_yaml.write_text(dvc_yaml.read_text().replace("cmd: python -m stages.", wrapper))
    if args.overrides:  # DVC's own parser, as `dvc exp run -S` applies them
        apply_overrides(repo / "params.yaml", args.overrides)
    log = scratch / "stages.jsonl"
    env = {
        **os.environ,
        "BENCH_LOG": str(log),
        "DVC_NO_ANALYTICS": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    dvc = [sys.executable, "-m", "dvc", "repro"]
    if no_scm:
        subprocess.run([sys.executable, "-m", "dvc", "config", "core.no_scm", "true"], cwd=repo, env=env, check=True)

    start = time.perf_counter()
    subprocess.run(dvc, cwd=repo, env=env, check=True)
    total = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run([*dvc, "-q"], cwd=repo, env=env, check=True)
    noop = time.perf_counter() - start

    records = [json.loads(line) for line in log.read_text().splitlines()]
    print(f"\noverrides: {' '.join(args.overrides) or 'none (the study defaults)'}; scratch: {scratch}")
    print(f"`import torch` (median of 3 in this run): {import_torch:.2f} s")
    print("| stage | wall s | training s | rest s | peak RSS MB |\n|---|---|---|---|---|")
    for r in records:
        training = r.get("training_s", 0.0)
        print(
            f"| {r['cmd']} | {r['seconds']:.1f} | {training:.1f} | {r['seconds'] - training:.1f} | {r['max_rss_mb']} |"
        )
    trained = sum(r.get("training_s", 0.0) for r in records)
    rest = sum(r["seconds"] for r in records) - trained
    peak = max(r["max_rss_mb"] for r in records)
    print(f"| **dvc repro, total** | **{total:.1f}** | {trained:.1f} | {rest:.1f} (stages) | max {peak} |")
    print(f"| no-op dvc repro | {noop:.2f} | | | |")
    metrics = {p.name: json.loads(p.read_text()) for p in (repo / "metrics").glob("*.json")}
    print(
        json.dumps(
            {k: {m: v for m, v in d.items() if "mse" in m or "elbow" in m or "loss" in m} for k, d in metrics.items()},
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
