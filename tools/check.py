"""Did this run reproduce the reference run? (`make check`, `make reference`, `make noise`)

    python -m tools.check                 # make check: this run against reference/<dataset>.json; exit 1 if not
    python -m tools.check reference       # make reference: record this run as the reference (keeps its noise)
    python -m tools.check noise RUN       # the noise: RUN, the reference's seeds run elsewhere, against the reference
    python -m tools.check noise --train   # make noise: train RUN first, in a scratch clone, on a forced path

`make noise` costs a whole study's training: every model trained again on another x86 kernel and
GEMM path than the machine's own (:func:`forced_path`); the figures, report and explorer are not
drawn again. Any other run of the reference's seeds serves as RUN: one made on another machine,
say, and copied here; its own params.yaml names its data set, so a clone of main records it
without having run anything (the reference holds the run it is compared with).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from stages.lib import io, nearcopy, params, report, reproduction

# The stages that write what the noise reads (reproduction.read_run: the per-model table, the
# sweep's curves, PCA's and the judge's metrics) and every stage before them; the figures, the
# report and the explorer would be time spent on nothing.
NOISE_STAGES = ("robustness", "sweep")


def forced_path(flags: set[str]) -> dict[str, str]:
    """Another arithmetic path than the CPU's own: AVX2 kernels and GEMMs on an AVX-512 machine (at
    about the same speed), the unvectorised kernels and SSE4.2 GEMMs on an AVX2 one (slower)."""
    if "avx512f" in flags:
        return {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
    return {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}


def cpu_flags() -> set[str]:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return set(next((line.split(":", 1)[1] for line in info.splitlines() if line.startswith("flags")), "").split())


def verdicts_of(p: params.Params) -> dict[str, object]:
    """This workspace's verdicts, from the metrics the report reads them from: not the report's
    metrics/study.json, stale after a `dvc repro` of the stages before it (another data set's,
    even), which would pass or fail the check on verdicts that are not this run's."""
    return {v.key: v.outcome for v in report.Metrics.load(p).verdicts()}


def current(p: params.Params) -> reproduction.Comparison:
    """This workspace's run (as the last `dvc repro` left it) against the reference."""
    verdicts = verdicts_of(p)
    run = reproduction.read_run()
    return reproduction.compare(p.dataset, verdicts, run, reproduction.seeds_of(p), len(p.ae.seeds))


def check(p: params.Params) -> int:
    c = current(p)
    reseeded = io.read_json(Path("metrics/robustness.json"))["check"].get("reseeded")
    for line in reproduction.verdict_lines(c, p.dataset, reseeded):
        print(line)
    return 0 if c.passes else 1


def reference(p: params.Params) -> int:
    path = reproduction.reference_path(p.dataset)
    old, seeds = reproduction.load_reference(p.dataset), reproduction.seeds_of(p)
    noise = old.get("noise") if old and old.get("seeds") == seeds else None
    verdicts = verdicts_of(p)
    with io.transaction() as out:
        out.write_json(path, reproduction.record(p.dataset, verdicts, reproduction.read_run(), seeds, noise))
    kept = "its arithmetic noise kept" if noise else "no arithmetic noise yet: `make noise` measures it"
    print(f"{path}: this run's {len(verdicts)} verdicts and every model's measures; {kept}")
    print("The report reads the reference: `dvc repro report` brings it up to date.")
    return 0


def recorded_reference(dataset: str) -> tuple[Path, dict] | None:
    """The reference of ``dataset`` and its path, or None (said on stderr) where none is recorded."""
    path = reproduction.reference_path(dataset)
    ref = reproduction.load_reference(dataset)
    if ref is None or "table" not in ref:
        print(f"error: no current reference at {path}: `make reference` first", file=sys.stderr)
        return None
    return path, ref


def noise(run: Path, how: str) -> int:
    """Record in the reference of ``run``'s data set the noise of ``run`` (the reference's seeds,
    run elsewhere) against the reference run, which the reference holds."""
    if not (run / params.PARAMS_FILE).is_file():
        print(f"error: {run} holds no {params.PARAMS_FILE}: RUN is the folder of a run of the study", file=sys.stderr)
        return 2
    try:
        p = params.load(run / params.PARAMS_FILE, this_machine=False)  # the run's machine, not this one
    except (params.ParamsError, OSError) as e:
        print(f"error: {run}: {e}", file=sys.stderr)
        return 2
    if (found := recorded_reference(p.dataset)) is None:
        return 2
    path, ref = found
    if ref["seeds"] != reproduction.seeds_of(p):
        print(f"error: {run} ran other seeds than {path}'s: its noise would be their difference", file=sys.stderr)
        return 2
    try:
        groups = nearcopy.noise(reproduction.run_of(ref).long(), reproduction.read_run(run).long())
    except (ValueError, OSError) as e:
        print(f"error: {run}: {e}", file=sys.stderr)
        return 2
    # Each measurement is kept; the tolerances use the largest noise of each group.
    sources = [s for s in (ref.get("noise") or {}).get("sources", []) if s["how"] != how] + [
        {"how": how, "groups": groups}
    ]
    ref["noise"] = {"how": "; ".join(s["how"] for s in sources), "sources": sources,
                    "groups": nearcopy.combined([s["groups"] for s in sources])}  # fmt: skip
    with io.transaction() as out:
        out.write_json(path, ref)
    print(f"{path}: the arithmetic noise of {len(groups)} groups of measures, {how}")
    return 0


def train_elsewhere(forced: dict[str, str], scratch: Path) -> Path:
    """The study from scratch on the ``forced`` arithmetic path, in a clone of HEAD in ``scratch``."""
    repo = scratch / "repo"
    subprocess.run(["git", "clone", "-q", ".", str(repo)], check=True)
    shutil.copy("params.yaml", repo / "params.yaml")  # the workspace's params, committed or not
    env = {**os.environ, **forced, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env["DVC_SITE_CACHE_DIR"] = str(scratch / "site-cache")  # else a folder per clone in /var/tmp/dvc, for good
    print(f"noise: training the study again in {repo} with {forced} (a whole study's time)", flush=True)
    code = run_as_group([sys.executable, "-m", "dvc", "repro", *NOISE_STAGES], cwd=repo, env=env)
    if code:
        raise subprocess.CalledProcessError(code, "dvc repro")
    return repo


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP raise KeyboardInterrupt, as Ctrl-C does: Python's default for them dies
    at once, leaving the scratch study training and its folder behind."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.default_int_handler)


def run_as_group(cmd: list[str], *, cwd: Path, env: dict[str, str]) -> int:
    """Run ``cmd`` in a session of its own and return its exit code; stopped this process (Ctrl-C
    or :func:`stop_on_signals`), stop the whole group (DVC and its stage) as Ctrl-C does, and
    kill it if it has not stopped within a minute."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=True)
    try:
        return proc.wait()
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.check", description=__doc__.splitlines()[0])
    parser.add_argument("verb", nargs="?", default="check", choices=["check", "reference", "noise"])
    parser.add_argument("run", nargs="?", type=Path, help="noise: the other run's workspace")
    parser.add_argument("--train", action="store_true", help="noise: train the other run here first")
    parser.add_argument("--how", help="noise: how and where the other run was made, for the record")
    args = parser.parse_args(argv)
    if args.verb != "noise" and (args.run is not None or args.train):
        parser.error("a RUN folder and --train are noise's")
    if args.verb == "noise" and (args.run is None) == (not args.train):
        parser.error("noise takes a RUN folder or --train")
    if args.verb == "noise" and args.run is not None:  # a run made elsewhere: nothing need have run here
        return noise(args.run, args.how or f"against {args.run}")
    if not Path("models").is_dir():
        # metrics/ is in git: without models, they are the committed run's, not one made here.
        print("Nothing has run in this clone yet (no models/): `make repro` first, then `make check`.")
        return 1
    p = params.load()
    if args.verb == "check":
        return check(p)
    if args.verb == "reference":
        return reference(p)
    if (found := recorded_reference(p.dataset)) is None:
        return 2
    path, ref = found
    # The scratch clone trains this workspace's code and params: the reference must be their run.
    if ref["seeds"] != reproduction.seeds_of(p) or ref["table"] != reproduction.records(reproduction.read_run().table):
        print(f"error: {path} is not this workspace's run: `make reference` first", file=sys.stderr)
        return 2
    forced = forced_path(cpu_flags())
    here = reproduction.describe(reproduction.machine())
    paths = ", ".join(f"{k}={v}" for k, v in forced.items())
    # The scratch study is a whole run's models: gone once its noise is recorded, on failure, or
    # on a signal.
    stop_on_signals()
    try:
        with tempfile.TemporaryDirectory(prefix="noise-") as scratch:
            run = train_elsewhere(forced, Path(scratch))
            return noise(run, args.how or f"against the same seeds on {here} with {paths}")
    except KeyboardInterrupt:
        print("noise: stopped: nothing recorded, the scratch study removed", file=sys.stderr)
        return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())
