"""Markdown for the report: numbers, tables, image links and comparisons; every number comes from a metrics file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath


def num(value: float | int | None, digits: int = 4) -> str:
    if value is None:
        return "none"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}g}"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(num(c) if isinstance(c, float) else str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def image(path: str, alt: str, base: str = "report") -> str:
    """A Markdown image link to ``path`` (relative to the project) from a file in ``base``."""
    depth = len(PurePosixPath(base).parts)
    return f"![{alt}]({'../' * depth}{path})"


def compare(a: float, b: float, a_name: str, b_name: str, what: str) -> str:
    """One sentence: which of two lower-is-better numbers wins and by how much."""
    low, high = (a_name, b_name) if a <= b else (b_name, a_name)
    ratio = max(a, b) / min(a, b) if min(a, b) > 0 else float("inf")
    text = f"{low}'s {what} ({num(min(a, b))}) is lower than {high}'s ({num(max(a, b))}), a factor of {ratio:.2f}."
    return text[0].upper() + text[1:]
