"""Problem: one thing wrong, located by file, object and path; how paths and files are shown."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Problem:
    """One thing wrong, located by file, object and path inside the object."""

    file: str
    obj: str
    path: str
    message: str

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.file, self.obj, self.path) if part)
        return f"{where}: {self.message}"


def fmt_path(parts: Iterable[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def display(path: Path) -> str:
    """Repo-relative where possible: messages stay short and clickable."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)
