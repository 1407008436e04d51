"""The READMEs' examples run: every Python block executes, and the French one matches the English.

Each block runs in a fresh temporary working directory, so the SQLite file it creates stays
out of the checkout.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

from case_workflow import Engine

ROOT = Path(__file__).resolve().parents[1]
READMES = ("README.md", "README.fr.md")

FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(readme: str, language: str) -> list[str]:
    text = (ROOT / readme).read_text(encoding="utf-8")
    return [body for lang, body in FENCE.findall(text) if lang == language]


def _python_cases() -> list[tuple[str, int]]:
    return [
        (readme, index) for readme in READMES for index in range(len(_blocks(readme, "python")))
    ]


def _code_tokens(source: str) -> list[tuple[int, str]]:
    """Return the tokens of ``source`` without comments and layout-only newlines."""
    skipped = {tokenize.COMMENT, tokenize.NL}
    return [
        (token.type, token.string)
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type not in skipped
    ]


def _shell_commands(source: str) -> list[str]:
    return [line for line in source.splitlines() if line.strip() and not line.startswith("#")]


def test_readmes_have_python_examples() -> None:
    for readme in READMES:
        assert _blocks(readme, "python"), f"{readme} has no python block"


@pytest.mark.parametrize(("readme", "index"), _python_cases())
def test_python_block_runs(
    readme: str, index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    source = _blocks(readme, "python")[index]
    namespace: dict[str, object] = {"__name__": "__readme__"}
    try:
        exec(compile(source, f"{readme} python block {index + 1}", "exec"), namespace)
    finally:
        for value in namespace.values():
            if isinstance(value, Engine):
                value.close()


def test_french_python_matches_english() -> None:
    english = [_code_tokens(block) for block in _blocks("README.md", "python")]
    french = [_code_tokens(block) for block in _blocks("README.fr.md", "python")]
    assert french == english


def test_french_commands_match_english() -> None:
    english = [_shell_commands(block) for block in _blocks("README.md", "sh")]
    french = [_shell_commands(block) for block in _blocks("README.fr.md", "sh")]
    assert french == english
