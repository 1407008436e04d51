"""Helpers for tests that load workflow files: broken variants of a valid fixture, positions."""

from __future__ import annotations

import shutil
from pathlib import Path

FIXTURES = Path(__file__).parent / "workflows"
MINIMAL = FIXTURES / "minimal.yaml"


def variant(tmp_path: Path, *replacements: tuple[str, str]) -> Path:
    """Write ``minimal.yaml`` with each ``(old, new)`` replaced once, beside its templates."""
    text = MINIMAL.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, f"fixture text {old!r} not found in {MINIMAL}"
        text = text.replace(old, new, 1)
    shutil.copytree(FIXTURES / "letters", tmp_path / "letters", dirs_exist_ok=True)
    path = tmp_path / "variant.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def place(path: Path, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """Return the 1-based line and column where the ``occurrence``-th ``needle`` starts."""
    text = path.read_text(encoding="utf-8")
    start = -1
    for _ in range(occurrence):
        start = text.index(needle, start + 1)
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return line, column
