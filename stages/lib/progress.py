"""The line a training loop prints after each epoch, and its reading.

One format for the loop that writes it (:func:`stages.lib.train.fit`) and the tools that read
a stage's stderr (the campaign's progress board, ``benchmarks.timed``). No torch here: the readers
import this without the seconds a torch import takes.
"""

from __future__ import annotations

import re
from typing import NamedTuple

LINE = re.compile(
    r"^(?P<name>.+?): epoch (?P<epoch>\d+)/(?P<epochs>\d+) (?P<summary>.*) \((?P<seconds>\d+(?:\.\d+)?) s\)$"
)


class Epoch(NamedTuple):
    name: str  # the model, e.g. "train_ae seed 1" or "robustness: 4 VAEs"
    epoch: int
    epochs: int
    summary: str  # the losses, as printed
    seconds: float


def line(epoch: Epoch) -> str:
    """The printed line: ``train_vae: epoch 2/20 train_loss 163.1, test_loss 161.9 (2.0 s)``."""
    return f"{epoch.name}: epoch {epoch.epoch}/{epoch.epochs} {epoch.summary} ({epoch.seconds:.1f} s)"


def parse(text: str) -> Epoch | None:
    """The epoch a printed line reports, ``None`` for any other line."""
    found = LINE.match(text.rstrip("\n"))
    if found is None:
        return None
    return Epoch(
        name=found["name"],
        epoch=int(found["epoch"]),
        epochs=int(found["epochs"]),
        summary=found["summary"],
        seconds=float(found["seconds"]),
    )
