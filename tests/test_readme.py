"""Every command in the README's code blocks, run on the tiny pipeline, does what the README
says of it; the few that only the real study or CI can run name the test that covers them."""

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.browser import needs_chromium, offline_page
from tests.e2e import ROOT, clone, commit, dvc, dvc_stdout, ran

README = ROOT / "README.md"
COVERED_ELSEWHERE = {
    "make repro": "test_make_targets_run_what_the_tests_run, and the end-to-end tests' `dvc repro`",
    "make check": "test_make_targets_run_what_the_tests_run, and test_reproduction.py's end-to-end test",
    "make test": ".ci/run, which CI runs on every submission",
}


def commands(block: str) -> list[str]:
    """The commands of a code block: each line without its comment (`  # ...`)."""
    lines = [re.split(r"\s{2,}#\s", line)[0].strip() for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def readme_blocks() -> list[list[str]]:
    return [commands(block) for block in re.findall(r"```sh\n(.*?)```", README.read_text(), re.DOTALL)]


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


def check_grid(repo: Path, env: dict, output: str) -> None:
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


def check_remote(repo: Path, env: dict, output: str) -> None:
    assert "store" in dvc(repo, env, "remote", "list")


def check_push(repo: Path, env: dict, output: str) -> None:
    assert "pushed" in output or "Everything is up to date" in output, output


def check_clone(repo: Path, env: dict, output: str) -> None:
    study = repo.parent / "elsewhere" / "study"
    assert (study / "models" / "vae" / "model.safetensors").is_file()
    assert ran(dvc(study, env, "repro")) == set()


def check_robust30(repo: Path, env: dict, output: str) -> None:
    assert experiments(repo, env)["robust30"]["robustness"]["seeds"] == 30
    assert ran(output) == {"robustness", "report"}, output


CHECKS = {
    "dvc exp run -n robust30 -S robustness.seed_count=30": check_robust30,
    "dvc exp run -n quick -S ae.epochs=2 -S vae.epochs=2": check_quick,
    "dvc exp run --queue -S 'ae.lr=3e-4,3e-3'": check_grid,
    "dvc exp show --hide-queued --only-changed --drop '^(?!Experiment|verdicts)'": check_verdict_columns,
    r"dvc exp show --hide-queued --only-changed --drop '^(?!Experiment|dataset|ae\.|.*test_mse$)'": check_param_columns,
    "dvc metrics diff HEAD quick": check_metrics_diff,
    "dvc plots diff HEAD quick": check_plots_diff,
    'dvc remote add -d store /path/to/dvc-store && git commit -am "Add DVC remote"': check_remote,
    "dvc push --run-cache": check_push,
    "git clone /path/to/repo study && cd study && dvc pull --run-cache": check_clone,
}


def test_every_readme_command_is_run_here_or_names_the_test_that_covers_it():
    shown = [c for block in readme_blocks() for c in block]
    assert len(shown) == len(set(shown)), "a command appears twice"
    assert set(shown) == set(CHECKS) | set(COVERED_ELSEWHERE)


@pytest.mark.parametrize(
    ("target", "command"),
    [
        ("repro", "$(BIN)/dvc repro"),
        ("check", "$(BIN)/python -m stages.lib.reproduction check"),
        ("reference", "$(BIN)/python -m stages.lib.reproduction reference"),
        ("grid", "$(BIN)/python -m tools.grid $(GRID)"),
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


@needs_chromium
def test_the_readme_commands_do_what_it_says(pipeline, tmp_path):
    repo, env = clone(pipeline, tmp_path / "repo"), pipeline[1]
    # The README starts from a clone of the project, which has no DVC remote yet.
    dvc(repo, env, "remote", "remove", "store")
    commit(repo, env, "no remote")
    (tmp_path / "elsewhere").mkdir()
    env = {**env, "GIT_AUTHOR_NAME": "test", "GIT_COMMITTER_NAME": "test"}
    env |= {"GIT_AUTHOR_EMAIL": "test@example.com", "GIT_COMMITTER_EMAIL": "test@example.com"}
    substitutions = {"/path/to/dvc-store": str(tmp_path / "store"), "/path/to/repo": str(repo)}
    for block in readme_blocks():
        for line in block:
            if line in COVERED_ELSEWHERE:
                continue
            cwd = tmp_path / "elsewhere" if line.startswith("git clone") else repo
            CHECKS[line](repo, env, shell(line, cwd, env, substitutions))
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
