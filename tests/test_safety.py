"""Bad input fails before any work; nothing the pipeline reads is unpickled."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stages.lib.params import cpu_has_bf16

ROOT = Path(__file__).resolve().parents[1]
STAGE_SCRIPTS = sorted(p.stem for p in (ROOT / "stages").glob("*.py") if p.stem != "__init__")


def stage(name: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", f"stages.{name}", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p["ae"].update(epochs=0), "error: ae.epochs must be between 1 and 10000, got 0"),
        (lambda p: p.update(device="cuda:7"), "error: device is 'cuda:7'"),
        (lambda p: p["vae"].update(lr="1e-3"), "error: vae.lr must be a number, got '1e-3'"),
        pytest.param(
            lambda p: p.update(device="cpu", precision="bf16"),
            "error: precision is 'bf16' but this CPU has no bf16 arithmetic",
            marks=pytest.mark.skipif(cpu_has_bf16(), reason="this CPU has bf16 arithmetic"),
        ),
    ],
)
def test_a_stage_with_bad_params_exits_before_any_work(tmp_path, edit, message):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    edit(params)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    done = stage("train_ae", tmp_path, "--seed", "1")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(message)
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_a_stage_without_data_names_the_missing_file(tmp_path):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    done = stage("pca", tmp_path)
    assert done.returncode == 2
    assert "data/idx/train-images-idx3-ubyte not found; run `dvc repro download` first" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_every_stage_script_has_a_docstring_and_main():
    for name in STAGE_SCRIPTS:
        text = (ROOT / "stages" / f"{name}.py").read_text()
        assert text.startswith('"""') and "Reads:" in text and "Writes:" in text, name
        assert "def main() -> None:" in text and 'if __name__ == "__main__":\n    cli.run(main)' in text, name


def test_nothing_is_unpickled():
    """Weights are safetensors, YAML goes through safe_load, metrics are JSON."""
    unsafe = re.compile(
        r"^\s*(import|from) (pickle|dill|joblib)\b|\bpickle\.|torch\.load\(|yaml\.(unsafe_)?load\(|np\.load\("
    )
    for path in (ROOT / "stages").rglob("*.py"):
        hits = [line for line in path.read_text().splitlines() if unsafe.search(line)]
        assert not hits, f"{path}: {hits}"
