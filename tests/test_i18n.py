"""Translations of the command line: the catalogs are complete, compiled and used."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src"
LOCALE = SOURCE / "case_workflow" / "locale"
TEMPLATE = LOCALE / "case_workflow.pot"
FRENCH_PO = LOCALE / "fr" / "LC_MESSAGES" / "case_workflow.po"
FRENCH_MO = LOCALE / "fr" / "LC_MESSAGES" / "case_workflow.mo"
# The keywords that docs/translations.md passes to `pybabel extract`.
KEYWORDS = {"_": None, "ngettext": (1, 2), "_count": (2, 3)}

PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def _read_po(path: Path) -> Catalog:
    with path.open("rb") as stream:
        return read_po(stream)


def _read_mo(path: Path) -> Catalog:
    with path.open("rb") as stream:
        return read_mo(stream)


def _messages(catalog: Catalog) -> list[Message]:
    return [message for message in catalog if message.id]


def _ids(message: Message) -> tuple[str, ...]:
    return tuple(message.id) if isinstance(message.id, list | tuple) else (message.id,)


def _strings(message: Message) -> tuple[str, ...]:
    if isinstance(message.string, list | tuple):
        return tuple(message.string)
    return (message.string or "",)


def _content(catalog: Catalog) -> dict[tuple[str, ...], tuple[str, ...]]:
    return {_ids(message): _strings(message) for message in _messages(catalog)}


def test_template_matches_source() -> None:
    with (ROOT / "babel.cfg").open(encoding="utf-8") as stream:
        method_map, options_map = parse_mapping_cfg(stream)  # type: ignore[no-untyped-call]
    extracted = {
        (message,) if isinstance(message, str) else tuple(message)
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(SOURCE / "case_workflow" / "cli"),
            method_map,
            options_map,
            keywords=KEYWORDS,
        )
    }
    template = {_ids(message) for message in _messages(_read_po(TEMPLATE))}
    assert extracted - template == set(), "messages missing from the template: extract again"
    assert template - extracted == set(), "stale messages in the template: extract again"


def test_french_catalog_covers_template() -> None:
    french = _read_po(FRENCH_PO)
    for message in _messages(_read_po(TEMPLATE)):
        translated = french.get(message.id)
        assert translated is not None, f"{message.id!r} missing from the French catalog"
        assert not translated.fuzzy, f"{message.id!r} is marked fuzzy"
        assert all(text.strip() for text in _strings(translated)), f"{message.id!r} untranslated"


def test_french_catalog_has_no_obsolete_entries() -> None:
    assert dict(_read_po(FRENCH_PO).obsolete) == {}


@pytest.mark.parametrize(
    "message", _messages(_read_po(FRENCH_PO)), ids=lambda message: _ids(message)[0][:40]
)
def test_placeholders_match(message: Message) -> None:
    expected = [sorted(PLACEHOLDER.findall(text)) for text in _ids(message)]
    for text in _strings(message):
        # Every plural form must use the placeholders of the plural msgid.
        assert sorted(PLACEHOLDER.findall(text)) == expected[-1], text
    assert all(found == expected[0] for found in expected), _ids(message)


def test_compiled_catalog_is_current(tmp_path: Path) -> None:
    fresh = tmp_path / "case_workflow.mo"
    with fresh.open("wb") as stream:
        write_mo(stream, _read_po(FRENCH_PO))
    assert _content(_read_mo(FRENCH_MO)) == _content(_read_mo(fresh)), (
        "the shipped .mo differs from the .po: run pybabel compile"
    )


def run_cli(*arguments: str, language: str) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(SOURCE), environment.get("PYTHONPATH", "")) if part
    )
    environment["LANGUAGE"] = language
    # Wide enough that rich does not wrap help text inside the checked phrases.
    environment["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "case_workflow.cli", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def test_validate_speaks_french() -> None:
    path = ROOT / "workflows" / "boston-311.yaml"
    result = run_cli("validate", str(path), language="fr")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"{path} : valide (workflow boston-311 version 1, 4 états, 3 transitions, "
        "2 courriers x 1 langue)"
    )


def test_validate_speaks_english_by_default() -> None:
    path = ROOT / "workflows" / "boston-311.yaml"
    result = run_cli("validate", str(path), language="en")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(f"{path}: valid (workflow boston-311 version 1")


def test_help_speaks_french() -> None:
    result = run_cli("init", "--help", language="fr_FR.UTF-8")
    assert result.returncode == 0, result.stderr
    assert "Créer ou mettre à niveau le schéma de la base de données." in result.stdout
