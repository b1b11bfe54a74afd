"""The campaign's points: DVC's expansion of `-S` sweeps, and each point's params checked before any task."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tools.campaign import CampaignError

PARAMS_FILE = "params.yaml"


NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


CLAIMS = "refs/campaigns"  # a campaign's claim on its name, on the git remote


EXPS = "refs/exps"


@dataclass(frozen=True)
class Point:
    name: str
    overrides: tuple[tuple[str, str], ...]  # (params file, Hydra override), in the order given

    @property
    def set_params(self) -> list[str]:
        """The point's `-S` arguments for `dvc exp run`."""
        return [o if path == PARAMS_FILE else f"{path}:{o}" for path, o in self.overrides]

    def __str__(self) -> str:
        return " ".join(self.set_params)


def exp_ref(commit: str, name: str) -> str:
    """DVC's ref for experiment `name` of baseline `commit`."""
    return f"{EXPS}/{commit[:2]}/{commit[2:]}/{name}"


def valid_ref(ref: str) -> bool:
    """Git's own rule for ref names: a name that passes the character check can still fail it
    ('a..b', 'a.lock'), and then only at the claim's push, or at a node's."""
    return subprocess.run(["git", "check-ref-format", ref], capture_output=True).returncode == 0


def expand(set_params: list[str], name: str | None) -> list[Point]:
    """DVC's own expansion of `-S` sweeps into points, named NAME-1..N as `dvc exp run --queue
    -n NAME` names them; the default NAME is a digest of the campaign, so a rerun of the same campaign
    gives its points the same names."""
    from dvc.exceptions import InvalidArgumentError
    from dvc.utils.cli_parse import to_path_overrides
    from dvc.utils.hydra import get_hydra_sweeps
    from hydra.errors import HydraException

    for arg in set_params:
        # DVC resolves `${...}` against the params file each time it applies an override: once on
        # the driver's copy for the check, again in each node's clone, where it may read otherwise.
        if "${" in arg:
            raise CampaignError(
                f"-S {arg!r}: interpolations (${{...}}) are not allowed in a campaign; give the value itself"
            )
    try:
        sweeps = get_hydra_sweeps(to_path_overrides(set_params))
    except (InvalidArgumentError, HydraException) as err:
        raise CampaignError(f"bad campaign {' '.join(set_params)!r}: {str(err).splitlines()[0]}") from None
    overrides = [tuple((path, o) for path, sweep in point.items() for o in sweep) for point in sweeps]
    if name is None:
        name = "campaign-" + hashlib.sha256(repr(overrides).encode()).hexdigest()[:7]
    elif not NAME.fullmatch(name) or not valid_ref(f"{CLAIMS}/{name}") or not valid_ref(exp_ref("0" * 40, f"{name}-1")):
        raise CampaignError(
            f"--name {name!r}: letters, digits, '.', '_' and '-' only, starting with a letter or digit, "
            "and a valid git ref name (no '..', no '.' or '.lock' at the end)"
        )
    return [Point(name=f"{name}-{i}", overrides=o) for i, o in enumerate(overrides, start=1)]


def check(points: list[Point], root: Path) -> dict[str, object]:
    """Each point's params through DVC's override and the params loader, as its stages would
    see them; the first bad one fails naming the point, the key and the allowed values.
    Returns each point's validated params, by name."""
    from dvc.exceptions import InvalidArgumentError

    from stages.lib import params

    checked = {}
    with tempfile.TemporaryDirectory(prefix="campaign-params-") as tmp:
        for point in points:
            files = {PARAMS_FILE} | {path for path, _ in point.overrides}
            for path in files:
                # A node applies the override to this path in its clone: outside it, the
                # write would land in the node's temporary directory or anywhere else.
                if not (root / path).resolve().is_relative_to(root.resolve()):
                    raise CampaignError(f"{point.name} ({point}): params file {path} is outside the repository")
                # Absolute, it names this checkout's file, not the clone's: the check would edit
                # it in place, and a node would write to the driver's path.
                if Path(path).is_absolute():
                    relative = (root / path).resolve().relative_to(root.resolve())
                    raise CampaignError(f"{point.name} ({point}): params file {path}: give it as {relative}")
                if not (root / path).is_file():
                    raise CampaignError(f"{point.name} ({point}): params file {path} not found")
                (Path(tmp) / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(root / path, Path(tmp) / path)
            try:
                for path in files:
                    _apply(Path(tmp) / path, [o for p, o in point.overrides if p == path])
                checked[point.name] = params.load(Path(tmp) / PARAMS_FILE, this_machine=False)  # run on a node
            except (InvalidArgumentError, params.ParamsError) as err:
                raise CampaignError(f"{point.name} ({point}): {err}") from None
    return checked


def _apply(path: Path, overrides: list[str]) -> None:
    """DVC's `-S` on one params file. Hydra refuses a key the file lacks without saying more;
    added with Hydra's `+` instead, the params loader names it and the keys it allows."""
    from dvc.exceptions import InvalidArgumentError
    from dvc.utils.hydra import apply_overrides

    original = path.read_bytes()
    try:
        apply_overrides(path, overrides)
    except InvalidArgumentError as err:
        missing = re.match(r"Could not override '([^']+)'", str(err.__cause__))
        if not missing:
            raise InvalidArgumentError(" ".join(str(err.__cause__ or err).split())) from None
        path.write_bytes(original)
        key = missing.group(1)
        apply_overrides(path, [f"+{o}" if o.startswith(f"{key}=") else o for o in overrides])
