"""Every command in the code blocks of the README and of the docs/ pages, run on the tiny
pipeline, does what the page says of it; the few that only the real study or CI can run name
the test that covers them. Every relative link of those pages resolves."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.browser import needs_chromium, offline_page
from harness.e2e import ROOT, clone, commit, dvc, dvc_stdout, ran, run

README = ROOT / "README.md"
DOCS = ROOT / "docs"
# The campaign page's commands need Ray in a network namespace of its own: tests/test_campaign.py runs
# them, verbatim, there (see campaign_block).
CAMPAIGNS = DOCS / "campaigns.md"


def pages() -> list[Path]:
    """Every Markdown page a reader is sent to: the README and docs/."""
    return [README, *sorted(DOCS.glob("*.md"))]


def run_here() -> list[Path]:
    """The pages whose commands this file runs."""
    return [page for page in pages() if page != CAMPAIGNS]


def commands(block: str) -> list[str]:
    """The commands of a code block: each line without its comment (`  # ...`)."""
    lines = [re.split(r"\s{2,}#\s", line)[0].strip() for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def blocks(path: Path) -> list[list[str]]:
    """The commands of each shell code block (```sh) of a Markdown page, in order."""
    return [commands(block) for block in re.findall(r"^```sh\n(.*?)^```", path.read_text(), re.DOTALL | re.MULTILINE)]


COVERED_ELSEWHERE = {
    "make install": ".ci/run (`make test` installs first), and test_makefile.py's choice of Python",
    "make repro": "test_make_targets_run_what_the_tests_run, and the end-to-end tests' `dvc repro`",
    "make check": "test_make_targets_run_what_the_tests_run, and test_reproduction.py's end-to-end test",
    "make reference": "test_make_targets_run_what_the_tests_run, and test_reproduction.py's end-to-end test",
    "make noise": (
        "test_make_targets_run_what_the_tests_run, and test_reproduction.py's end-to-end test, which runs "
        "`tools.check noise --train` on the tiny pipeline"
    ),
    "make test": ".ci/run, which CI runs on every submission",
    "make test-fast": "test_makefile.py's fast-lane test: the tests it leaves out and the ones it keeps",
    "OMP_WAIT_POLICY=PASSIVE dvc queue start -j 2": "test_queued_experiments_run_in_parallel",
    "dvc exp run -n fashion -S dataset=fashion-mnist": (
        "test_another_data_set_reruns_every_stage_and_returning_restores_them_from_the_run_cache "
        "(`dvc repro` with that param)"
    ),
}
# Commands named in the pages' prose (`...`) that no block shows, and what runs them.
NAMED_IN_PROSE = {
    "dvc repro": "make repro's recipe (test_make_targets_run_what_the_tests_run) and every end-to-end test",
    "python -m tools.costs": "test_costs.py, which compares its output with the README's table",
    "python -m tools.power": "test_power.py, which compares its output with docs/reproduction.md's tables",
    "python -m tools.power --false-alarms 4000": "test_tools_power_prints_each_sources_false_alarms (20 trials)",
    "dvc repro --pull": "test_an_experiment_travels_between_two_clones_through_the_remotes (its clone C)",
    # Named as what `python -m tools.push` replaces; its shortfall was measured by hand (docs/caching.md).
    "dvc push --run-cache": "nothing: the pages advise against it",
}
COMMAND_WORDS = {"dvc", "git", "make", "python", "pip", "uv", "ray", "bash", "source"}


def experiments(repo: Path, env: dict) -> dict[str, dict]:
    """Experiment (or queued run) name -> its params, from `dvc exp show --json`."""
    found = {}
    for commit_ in json.loads(dvc_stdout(repo, env, "exp", "show", "--json")):
        for exp in commit_.get("experiments") or []:
            for rev in exp["revs"]:
                found[rev.get("name") or rev["rev"]] = rev["data"]["params"]["params.yaml"]["data"]
    return found


def check_quick(repo: Path, env: dict, output: str) -> None:
    params = experiments(repo, env)["quick"]
    assert params["ae"]["epochs"] == 2 and params["vae"]["epochs"] == 2
    assert {"train_ae@1", "sweep", "train_vae", "report"} <= ran(output)


def check_queued_experiments(repo: Path, env: dict, output: str) -> None:
    queued = dvc(repo, env, "queue", "status")
    assert queued.count("Queued") == 2, queued
    lrs = {p["ae"]["lr"] for name, p in experiments(repo, env).items() if name not in ("quick", "robust30")}
    assert lrs == {3e-4, 3e-3}


SCREEN = 180  # columns: a wide terminal; a plain `dvc exp show` needs about 200 here


def width(table: str) -> int:
    """Columns the table needs (outside a terminal, DVC prints it whole, without "…")."""
    return max(len(line.rstrip()) for line in table.splitlines())


def check_verdict_columns(repo: Path, env: dict, output: str) -> None:
    header = output.splitlines()[1]  # rich's table: a rule, then the header
    assert "Experiment" in header and "verdicts" in output, output
    assert "ae.lr" not in output and "test_mse" not in output
    print(f"verdict recipe: {width(output)} columns")
    assert width(output) <= SCREEN, output  # the README's first recipe fits a screen


def check_param_columns(repo: Path, env: dict, output: str) -> None:
    assert "ae.epochs" in output and "test_mse" in output, output
    assert "verdicts" not in output
    print(f"params and test MSEs recipe: {width(output)} columns")


def check_metrics_diff(repo: Path, env: dict, output: str) -> None:
    assert "metrics/vae.json" in output and "test_loss" in output, output


def check_plots_diff(repo: Path, env: dict, output: str) -> None:
    assert (repo / "dvc_plots" / "index.html").is_file()


def check_status(repo: Path, env: dict, output: str) -> None:
    assert "Data and pipelines are up to date" in output, output


def check_activate(repo: Path, env: dict, output: str) -> None:
    """Run on a PATH without the environment, then `command -v dvc python` (see PROBES):
    both are now the environment's."""
    found = [Path(path).resolve() for path in output.split()]
    assert found == [(repo / ".venv" / "bin" / name).resolve() for name in ("dvc", "python")], output


def check_remote(repo: Path, env: dict, output: str) -> None:
    assert "store" in dvc(repo, env, "remote", "list")
    assert not run(["git", "status", "--porcelain", ".dvc"], repo, env)  # committed, and pushed:
    assert run(["git", "rev-parse", "HEAD"], repo, env) == run(["git", "rev-parse", "@{upstream}"], repo, env)


def check_push(repo: Path, env: dict, output: str) -> None:
    assert re.search(r"^pushed to the DVC remote: \d+ objects, [1-9]\d* run-cache entries there$", output, re.M), output


def study(repo: Path) -> Path:
    """The clone that the pages' `git clone ... study` makes elsewhere."""
    return repo.parent / "elsewhere" / "study"


def check_clone(repo: Path, env: dict, output: str) -> None:
    assert (study(repo) / "models" / "vae" / "model.safetensors").is_file()
    assert ran(dvc(study(repo), env, "repro")) == set()


def check_exp_push(repo: Path, env: dict, output: str) -> None:
    assert "quick" in run(["git", "ls-remote", "origin", "refs/exps/*"], repo, env), output


def check_exp_pull(repo: Path, env: dict, output: str) -> None:
    """The other clone, at the commit before the experiment's, now holds its params and
    outputs: nothing to rerun."""
    params = yaml.safe_load((study(repo) / "params.yaml").read_text())
    assert params["ae"]["epochs"] == params["vae"]["epochs"] == 2
    assert ran(dvc(study(repo), env, "repro")) == set()


def check_robust30(repo: Path, env: dict, output: str) -> None:
    assert experiments(repo, env)["robust30"]["fresh"]["seed_count"] == 30
    assert ran(output) == {"train_fresh", "robustness", "report"}, output


CHECKS = {
    "source .venv/bin/activate": check_activate,
    "dvc status": check_status,
    "dvc exp run -n robust30 -S fresh.seed_count=30": check_robust30,
    "dvc exp run -n quick -S ae.epochs=2 -S vae.epochs=2": check_quick,
    "dvc exp run --queue -S 'ae.lr=3e-4,3e-3'": check_queued_experiments,
    "dvc exp show --hide-queued --only-changed --drop '^(?!Experiment|verdicts)'": check_verdict_columns,
    r"dvc exp show --hide-queued --only-changed --drop '^(?!Experiment|dataset|ae\.|.*test_mse$)'": check_param_columns,
    "dvc metrics diff HEAD quick": check_metrics_diff,
    "dvc plots diff HEAD quick": check_plots_diff,
    'dvc remote add -d store /path/to/dvc-store && git commit -m "Add DVC remote" .dvc/config && git push': (
        check_remote
    ),
    "python -m tools.push": check_push,
    "git clone /path/to/git-remote study && cd study && dvc pull --run-cache": check_clone,
    "dvc exp push origin quick": check_exp_push,
    "dvc exp pull origin quick && dvc exp apply quick": check_exp_pull,
}
# What runs after a command so that its check can see its effect.
PROBES = {"source .venv/bin/activate": " && command -v dvc python"}
# Where a command runs: in the project's clone unless named here.
ELSEWHERE = {"git clone": lambda repo: repo.parent / "elsewhere", "dvc exp pull": study}


def campaign_block() -> list[str]:
    """The block of docs/campaigns.md that runs the campaign tool: Ray needs a network namespace of its
    own here, so test_campaign.py runs these lines, verbatim, inside one."""
    (block,) = [b for b in blocks(CAMPAIGNS) if any("tools.campaign" in line for line in b)]
    return block


def shown() -> list[str]:
    """Every command of every page's code blocks, in reading order."""
    return [line for page in pages() for block in blocks(page) for line in block]


def test_every_command_is_shown_once_and_run_here_or_names_the_test_that_covers_it():
    assert [c for c in shown() if shown().count(c) > 1] == [], "a command appears twice"
    here = {line for page in run_here() for block in blocks(page) for line in block}
    assert here == set(CHECKS) | set(COVERED_ELSEWHERE)


def prose(path: Path) -> str:
    """A page without its code blocks."""
    return re.sub(r"^```.*?^```", "", path.read_text(), flags=re.DOTALL | re.MULTILINE)


def named_commands(path: Path) -> list[str]:
    """The commands a page's prose names in `code`: those whose first word, after any
    `VAR=value`, is a command (`MNIST_MIRROR=... make repro`, but not `ae.seeds`)."""
    spans = [re.sub(r"^(\w+=\S+\s+)+", "", span) for span in re.findall(r"`([^`\n]+)`", prose(path))]
    return [span for span in spans if span.split()[0] in COMMAND_WORDS]


def test_a_command_named_in_prose_is_one_a_block_shows_or_names_what_runs_it():
    """`dvc exp show` may stand for the recipes that start with it; `dvc exp push origin
    <name>`, shown nowhere, may not."""
    parts = [part.strip().split() for line in shown() for part in line.split("&&")]
    for page in run_here():
        for name in named_commands(page):
            words = name.split()
            assert name in NAMED_IN_PROSE or any(p[: len(words)] == words for p in parts), f"{page.name}: `{name}`"


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(h) for h in re.findall(r"^#+ (.+)$", prose(path), re.MULTILINE)}


def test_every_relative_link_resolves_to_a_file_and_its_heading():
    for page in pages():
        for target in re.findall(r"\]\(([^)\s]+)\)", prose(page)):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            assert path.exists(), f"{page.relative_to(ROOT)} links to missing {target}"
            if anchor and path.suffix == ".md":
                assert anchor in anchors(path), f"{page.relative_to(ROOT)} links to no heading: {target}"


def test_every_test_the_docs_cite_exists():
    """A promise backed by a test name that no longer exists is a promise nobody checks."""
    tests = (ROOT / "tests").glob("*.py")
    defined = {name for path in tests for name in re.findall(r"def (test_\w+)", path.read_text())}
    files = {path.name for path in (ROOT / "tests").glob("test_*.py")}
    for page in [*pages(), ROOT / "benchmarks" / "README.md"]:
        for name in re.findall(r"`(test_\w+(?:\.py)?)", page.read_text()):
            assert name in defined or name in files, f"{page.relative_to(ROOT)} cites {name}, which no test defines"


def results_at_a_glance() -> str:
    text = README.read_text()
    return text[text.index("<!-- results:begin") : text.index("<!-- results:end -->")]


def test_the_results_at_a_glance_are_the_committed_runs():
    """The README's counts are those of metrics/study.json and params.yaml (update them
    between the results markers when the study's run changes)."""
    study_metrics = json.loads((ROOT / "metrics" / "study.json").read_text())
    seeds = yaml.safe_load((ROOT / "params.yaml").read_text())["fresh"]["seed_count"]
    results = " ".join(results_at_a_glance().split())
    assert f"Over {seeds} fresh seeds, the study's {len(study_metrics['verdicts'])} claims are" in results
    for label, count in study_metrics["robustness"].items():
        if count and label != "not_measured":
            assert f"{count} {label.replace('_', ' ')}" in results, (label, count)
    # The table's rows are the report's undetermined claims, with the report's pooled counts.
    report = (ROOT / "report" / "report.md").read_text()
    undetermined = dict(re.findall(r"^\| (\d+) \|[^|]*\| \*\*undetermined\*\*: in (\d+ of \d+) ", report, re.MULTILINE))
    shown = dict(re.findall(r"^\| (\d+) \|.*\| (\d+ of \d+) [^|]*\|$", results_at_a_glance(), re.MULTILINE))
    assert undetermined and shown == undetermined


@pytest.mark.parametrize(
    ("target", "command"),
    [
        ("repro", "$(BIN)/dvc repro"),
        ("check", "$(BIN)/python -m tools.check"),
        ("reference", "$(BIN)/python -m tools.check reference"),
        ("noise", "$(BIN)/python -m tools.check noise --train"),
        ("push", "$(BIN)/python -m tools.push"),
        ("campaign", "$(BIN)/python -m tools.campaign $(CAMPAIGN)"),
    ],
)
def test_make_targets_run_what_the_tests_run(target, command):
    """Each target installs, then runs the one command that the end-to-end tests run."""
    recipe = re.search(rf"^{target}: install\n\t(.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert recipe and recipe.group(1) == command


def shell(line: str, cwd: Path, env: dict, substitutions: dict[str, str]) -> str:
    for placeholder, value in substitutions.items():
        line = line.replace(placeholder, value)
    done = subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{line} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def in_order() -> list[tuple[Path, list[str]]]:
    """The blocks to run here, each with its page: the DVC remote's first (an experiment pushes
    its outputs to the remote its own commit names, as docs/caching.md says), then the README's
    and the docs/ pages' in reading order."""
    found = [
        (page, [line for line in block if line not in COVERED_ELSEWHERE])
        for page in run_here()
        for block in blocks(page)
    ]
    found = [(page, lines) for page, lines in found if lines]
    return sorted(found, key=lambda item: not any(line.startswith("dvc remote add") for line in item[1]))


@needs_chromium
def test_the_readme_commands_do_what_it_says(pipeline, tmp_path):
    """The README's commands, then those of the docs/ pages, in reading order."""
    repo, env = clone(pipeline, tmp_path / "repo"), pipeline[1]
    # The pages start from a clone of the project, which has no DVC remote yet; its git
    # remote is a bare repository of its own (not the shared pipeline's).
    dvc(repo, env, "remote", "remove", "store")
    commit(repo, env, "no remote")
    origin = tmp_path / "origin.git"
    run(["git", "clone", "-q", "--bare", str(repo), str(origin)], tmp_path, env)
    run(["git", "remote", "set-url", "origin", str(origin)], repo, env)
    run(["git", "fetch", "-q", "origin"], repo, env)
    (tmp_path / "elsewhere").mkdir()
    env = {**env, "GIT_AUTHOR_NAME": "test", "GIT_COMMITTER_NAME": "test"}
    env |= {"GIT_AUTHOR_EMAIL": "test@example.com", "GIT_COMMITTER_EMAIL": "test@example.com"}
    substitutions = {"/path/to/dvc-store": str(tmp_path / "store"), "/path/to/git-remote": str(origin)}
    venv = Path(sys.prefix)  # the environment running the tests stands for the project's .venv
    venv_bin = str(Path(sys.executable).parent)
    for page, lines in in_order():
        if page != README:
            # Each docs/ page starts where `make repro` leaves a reader: the committed run,
            # not the README's last experiment.
            run(["git", "reset", "-q", "--hard"], repo, env)
            dvc(repo, env, "checkout", "--force")
        for line in lines:
            cwd = next((where(repo) for start, where in ELSEWHERE.items() if line.startswith(start)), repo)
            if line not in PROBES:
                CHECKS[line](repo, env, shell(line, cwd, env, substitutions))
            elif (venv / "bin" / "activate").is_file():
                (repo / ".venv").symlink_to(venv)
                bare = {**env, "PATH": os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin)}
                CHECKS[line](repo, env, shell(line + PROBES[line], cwd, bare, substitutions))
                (repo / ".venv").unlink()
            else:
                print(f"not in a virtual environment: `{line}` not run")
    plots_diff_reads_at_a_glance(repo)


def plots_diff_reads_at_a_glance(repo: Path) -> None:
    """The page `dvc plots diff HEAD quick` wrote, drawn with no network: the sweep's per-epoch
    plot has one line per latent size and revision, and every axis is titled in words."""
    sizes = len(yaml.safe_load((repo / "params.yaml").read_text())["sweep"]["sizes"])
    page = repo / "dvc_plots" / "index.html"
    vega_views = len(re.findall(r'<div id\s*=\s*"[^"]+">\s*<script', page.read_text()))  # one per Vega plot
    with offline_page() as browser:
        browser.page.goto(page.as_uri())
        browser.page.wait_for_function(f"document.querySelectorAll('svg').length === {vega_views}", timeout=60_000)
        views = browser.page.evaluate(
            """() => [...document.querySelectorAll('svg')].map(svg => {
                const titles = [...svg.querySelectorAll('g.role-title-text text')].map(t => t.textContent);
                return {
                    title: titles.at(-1),  // the plot's; any before it head the panels of a facet
                    panels: titles.slice(0, -1),
                    lines: svg.querySelectorAll('g.mark-line path').length,
                    axes: [...svg.querySelectorAll('g.role-axis-title text')].map(t => t.textContent),
                };
            })"""
        )
        browser.page.screenshot(path=str(repo / "dvc_plots" / "screenshot.png"), full_page=True)
        assert not browser.errors and not browser.refused
    by_title = {v["title"]: v for v in views}
    assert len(by_title) == len(views) == vega_views >= 7, views
    sweep = by_title["Sweep: test error by epoch, one line per latent size"]
    assert sweep["panels"] == ["HEAD", "quick"] and sweep["lines"] == sizes * 2, sweep
    errors = by_title["Reconstruction error vs latent size"]
    assert errors["panels"] == ["HEAD", "quick"] and errors["lines"] == 4 * 2, errors  # AE, PCA x train, test
    fields = {"epoch", "latent", "test_loss", "test_error", "y", "dvc_inferred_y_value", "ae_test"}
    for view in views:
        assert len(view["axes"]) >= 2 and not fields & set(view["axes"]), view
