"""`make` finds a Python 3.11 or newer by itself, or says which versions it accepts; `make test-fast`
leaves out what the markers of tests/conftest.py name, and `make test` runs everything."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def fake_path(tmp_path: Path, pythons: dict[str, bool]) -> Path:
    """A PATH folder with make and a shell, and fake interpreters that pass (True) or fail
    the Makefile's version check, so that no real Python on the machine is seen."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("make", "sh", "echo", "test"):
        (folder / tool).symlink_to(shutil.which(tool))
    for name, new_enough in pythons.items():
        (folder / name).write_text(f"#!/bin/sh\nexit {0 if new_enough else 1}\n")
        (folder / name).chmod(0o755)
    return folder


def make_python(folder: Path) -> subprocess.CompletedProcess:
    env = {"PATH": str(folder)}
    return subprocess.run(["make", "-s", "python"], cwd=ROOT, env=env, capture_output=True, text=True)


@pytest.mark.parametrize(
    ("pythons", "chosen"),
    [
        ({"python3.12": True}, "python3.12"),
        ({"python3.14": True, "python3.13": True}, "python3.13"),
        ({"python3": True}, "python3"),
        ({"python3.11": True, "python3": True}, "python3.11"),
    ],
)
def test_make_picks_the_first_python_that_is_new_enough(tmp_path, pythons, chosen):
    done = make_python(fake_path(tmp_path, pythons))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == chosen


def test_make_refuses_an_old_python_naming_the_versions_it_accepts(tmp_path):
    done = make_python(fake_path(tmp_path, {"python3": False, "python3.10": True}))
    assert done.returncode != 0
    assert "no Python 3.11 or newer found: install python3.11, 3.12, 3.13 or 3.14" in done.stderr


def test_requires_python_has_a_floor_and_no_cap():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.11"' in text


def test_the_lock_pins_every_package_and_names_its_command():
    lock = (ROOT / "requirements.txt").read_text()
    assert "uv pip compile --universal --python-version 3.11 requirements.in -o requirements.txt" in lock
    pins = [line for line in lock.splitlines() if line and not line.startswith(("#", " "))]
    assert all("==" in line for line in pins) and len(pins) > 100
    direct = [line.split("==")[0] for line in (ROOT / "requirements.in").read_text().splitlines() if "==" in line]
    assert all(any(p.lower().startswith(name.lower() + "==") for p in pins) for name in direct)


PROBE = """
import json


def pytest_collection_finish(session):
    for item in session.items:
        marks = sorted({m.name for m in item.iter_markers()})
        print("PROBE", json.dumps([item.nodeid, "pipeline" in item.fixturenames, marks]))
"""


def collected(tmp_path: Path, *args: str) -> dict[str, tuple[bool, list[str]]]:
    """Test id -> (whether it builds the tiny pipeline, its markers), as pytest selects them."""
    (tmp_path / "lane_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{ROOT}"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "lane_probe", "--collect-only", "-q", "-n", "0", *args],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [json.loads(line[len("PROBE ") :]) for line in done.stdout.splitlines() if line.startswith("PROBE ")]
    return {nodeid: (pipeline, marks) for nodeid, pipeline, marks in rows}


def recipe(target: str) -> str:
    found = re.search(rf"^{target}: lint\n\t(.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert found, target
    return found.group(1)


def test_the_fast_lane_leaves_out_the_pipeline_ray_and_the_browser_and_make_test_runs_all(tmp_path):
    assert recipe("test") == "$(BIN)/python -m pytest -q"  # CI's target deselects nothing
    expression = re.fullmatch(r'\$\(BIN\)/python -m pytest -q -m "([^"]+)"', recipe("test-fast")).group(1)
    everything, lane = collected(tmp_path), collected(tmp_path, "-m", expression)
    assert lane and set(lane) < set(everything)
    assert [t for t, (pipeline, _) in lane.items() if pipeline] == []
    # A Ray cluster without the pipeline, and the browser tests, are marked for what they need.
    ray = "tests/test_campaign.py::test_the_local_cluster_listens_on_loopback_alone_with_token_auth"
    assert "ray" in everything[ray][1] and ray not in lane
    for browser in (
        "tests/test_readme.py::test_the_readme_commands_do_what_it_says",
        "tests/test_pipeline.py::test_plots_render_in_a_browser_with_no_network",
    ):
        assert "browser" in everything[browser][1]
    # The unit tests of the end-to-end files stay in the lane: the README's commands and links.
    assert "tests/test_readme.py::test_every_relative_link_resolves_to_a_file_and_its_heading" in lane
