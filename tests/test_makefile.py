"""`make` finds a Python 3.11 or newer by itself, or says which versions it accepts."""

import shutil
import subprocess
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
