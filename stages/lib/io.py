"""Deterministic, all-or-nothing output writing.

A stage collects its outputs in an :class:`Outputs` transaction: every file is written to a
hidden temporary name beside its destination and renamed into place only when the whole
stage has succeeded. A crash, Ctrl-C or exception leaves no file at a declared output path,
so DVC never caches half a result. Bytes are deterministic: sorted JSON keys, fixed float
formatting, PNGs without the ``Software`` version chunk, safetensors weights.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported by the functions that need it: `download` needs none
    import torch


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def csv_bytes(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buf.getvalue().encode()


def png_bytes(fig: Any) -> bytes:
    """Render a matplotlib figure to PNG without timestamps or version metadata."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _tmp_sibling(path: Path, is_dir: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}."
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=path.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    # mkstemp/mkdtemp create private (0600/0700) entries; outputs are ordinary files, with the
    # modes the user's umask gives them (0644/0755 under 022, private under 077).
    tmp.chmod((0o777 if is_dir else 0o666) & ~_umask())
    return tmp


def _umask() -> int:
    mask = os.umask(0o077)  # read by setting: the narrowest, for the instant before it is restored
    os.umask(mask)
    return mask


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


class Outputs:
    """Files staged under temporary names until :func:`transaction` commits them."""

    def __init__(self) -> None:
        self._staged: dict[Path, Path] = {}

    def _stage(self, path: Path, is_dir: bool) -> Path:
        path = Path(path)
        if path in self._staged:
            raise ValueError(f"{path} is written twice by one stage")
        tmp = _tmp_sibling(path, is_dir)
        self._staged[path] = tmp
        return tmp

    def write_bytes(self, path: Path, data: bytes) -> None:
        self._stage(path, is_dir=False).write_bytes(data)

    def write_json(self, path: Path, obj: Any) -> None:
        self.write_bytes(path, json_bytes(obj))

    def write_csv(self, path: Path, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.write_bytes(path, csv_bytes(columns, rows))

    def write_text(self, path: Path, text: str) -> None:
        self.write_bytes(path, text.encode())

    def save_figure(self, path: Path, fig: Any) -> None:
        self.write_bytes(path, png_bytes(fig))

    def directory(self, path: Path) -> Path:
        """A temporary directory that becomes ``path`` on commit."""
        return self._stage(path, is_dir=True)

    def save_checkpoint(self, path: Path, model: torch.nn.Module, config: Mapping[str, Any]) -> None:
        """A directory with ``config.json`` and ``model.safetensors``: no pickle, rebuildable."""
        write_checkpoint(self.directory(path), model, config)

    def commit(self) -> None:
        for path, tmp in self._staged.items():
            _remove(path)
            os.replace(tmp, path)
        self._staged.clear()

    def discard(self) -> None:
        for tmp in self._staged.values():
            _remove(tmp)
        self._staged.clear()


def write_checkpoint(folder: Path, model: torch.nn.Module, config: Mapping[str, Any]) -> None:
    """``config.json`` and ``model.safetensors`` into ``folder`` (made here; its parent staged)."""
    from safetensors.torch import save as safetensors_bytes

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_bytes(json_bytes(dict(config)))
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    (folder / "model.safetensors").write_bytes(safetensors_bytes(state))


@contextmanager
def transaction() -> Iterator[Outputs]:
    """Yield an :class:`Outputs`; rename everything into place only if the block succeeds."""
    out = Outputs()
    try:
        yield out
    except BaseException:
        out.discard()
        raise
    out.commit()


def load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a directory written by :meth:`Outputs.save_checkpoint` (no unpickling)."""
    from safetensors.torch import load_file

    path = Path(path)
    config = json.loads((path / "config.json").read_text())
    return config, load_file(path / "model.safetensors")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())
