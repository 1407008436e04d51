"""Tests of PDF output: real WeasyPrint rendering read back with poppler's pdftotext."""

# ruff: noqa: RUF001 - Arabic letters beside Latin ones are intended in the expected texts.

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from case_workflow.notifications import (
    DeadlineInfo,
    LetterInput,
    LetterRenderer,
    Party,
    render_pdf,
    shipped_template_dir,
)

pytest.importorskip("weasyprint")
pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("pdftotext", "pdffonts", "pdfdetach", "pdftoppm")),
    reason="poppler-utils (pdftotext, pdffonts, pdfdetach, pdftoppm) is not installed",
)

# pdftotext marks right-to-left runs with embedding controls; the checks compare the words.
BIDI_CONTROLS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
ARABIC_INDIC_DIGITS = re.compile("[\u0660-\u0669\u06f0-\u06f9]")

MEDIATOR = Party("mediator", "Institution du Médiateur du Royaume", "Rabat")
AL_OMRANE = Party("al-omrane-rabat", "Al Omrane Rabat-Salé-Kénitra", "Rabat")


def make_input(language: str, complainant_name: str = "Fatima Zahra El Amrani") -> LetterInput:
    return LetterInput(
        letter="reminder",
        language=language,
        registry_number="IMR/2024/00042",
        issued_at=datetime(2024, 8, 14, 23, 30, tzinfo=UTC),
        zone="Africa/Casablanca",
        subject="Relance" if language == "fr" else "تذكير",
        attachments=(),
        sender=MEDIATOR,
        sender_place="Rabat" if language == "fr" else "الرباط",
        sender_signatory="Le Médiateur du Royaume" if language == "fr" else "وسيط المملكة",
        recipient=AL_OMRANE,
        dossier_reference="MED-2024-0042",
        external_reference="",
        dossier_subject="Lot non livré à Tamesna",
        filed_at=datetime(2024, 6, 10, 10, 0, tzinfo=UTC),
        state="transmitted",
        complainant=Party("complainant", complainant_name),
        respondent=AL_OMRANE,
        region="Rabat-Salé-Kénitra",
        urgent=False,
        escalation_level=0,
        event="remind",
        actor_name="system",
        comment="",
        outcome="",
        deadline=DeadlineInfo(
            name="answer",
            due_at=datetime(2024, 8, 16, 22, 59, 59, tzinfo=UTC),
            started_at=datetime(2024, 6, 17, 9, 0, tzinfo=UTC),
            days_overdue=0,
            level=0,
            explanation_text="60 calendar days",
        ),
    )


def run(*command: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return result.stdout


def pdf_text(pdf: bytes, folder: Path) -> str:
    path = folder / "letter.pdf"
    path.write_bytes(pdf)
    return BIDI_CONTROLS.sub("", run("pdftotext", "-layout", str(path), "-"))


def compact(text: str) -> str:
    """Remove all white space: pdftotext places spaces between Arabic words and digits unevenly."""
    return re.sub(r"\s+", "", text)


@pytest.fixture(scope="module")
def renderer() -> LetterRenderer:
    return LetterRenderer([shipped_template_dir()])


def test_french_pdf_text(renderer: LetterRenderer, tmp_path: Path) -> None:
    html = renderer.render("letters/reminder", make_input("fr")).html

    text = pdf_text(render_pdf(html), tmp_path)

    assert "IMR/2024/00042" in text
    assert "Rabat, le 15 août 2024" in text
    assert "16 août 2024" in text
    assert "MED-2024-0042" in text


def test_arabic_pdf_text(renderer: LetterRenderer, tmp_path: Path) -> None:
    html = renderer.render("letters/reminder", make_input("ar")).html

    text = pdf_text(render_pdf(html), tmp_path)

    assert "IMR/2024/00042" in text
    assert "الرقم الترتيبي" in text
    assert "نذكركم بأننا أحلنا عليكم بتاريخ" in text
    assert "15غشت2024" in compact(text)
    assert "11صفر1446هـ" in compact(text)
    assert "16غشت2024" in compact(text)
    assert "MED-2024-0042المقدمةمنطرف" in compact(text)
    assert not ARABIC_INDIC_DIGITS.search(text)


@pytest.mark.parametrize("language", ["fr", "ar"])
def test_pdf_uses_only_amiri(renderer: LetterRenderer, tmp_path: Path, language: str) -> None:
    path = tmp_path / "letter.pdf"
    path.write_bytes(render_pdf(renderer.render("letters/reminder", make_input(language)).html))

    fonts = run("pdffonts", str(path)).splitlines()[2:]

    assert fonts
    for line in fonts:
        assert "+Amiri" in line.split()[0]


def test_override_does_not_flip_neighbours(renderer: LetterRenderer, tmp_path: Path) -> None:
    plain = renderer.render("letters/reminder", make_input("ar", "Ali evil")).html
    hostile = renderer.render("letters/reminder", make_input("ar", "Ali \u202eevil")).html

    plain_text = pdf_text(render_pdf(plain), tmp_path)
    hostile_text = pdf_text(render_pdf(hostile), tmp_path)

    # The override reverses the complainant's own text and nothing after it.
    assert "Ali live" in hostile_text
    assert hostile_text.replace("Ali live", "Ali evil") == plain_text


def test_pdf_page_image(renderer: LetterRenderer, tmp_path: Path) -> None:
    path = tmp_path / "letter.pdf"
    path.write_bytes(render_pdf(renderer.render("letters/reminder", make_input("ar")).html))

    run("pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(path), str(tmp_path / "page"))

    image = next(tmp_path.glob("page*.png"))
    assert image.read_bytes().startswith(b"\x89PNG")


def test_resources_outside_base_refused(tmp_path: Path) -> None:
    inside = tmp_path / "base" / "annex.txt"
    inside.parent.mkdir()
    inside.write_text("annex", encoding="utf-8")
    outside = tmp_path / "secret.txt"
    outside.write_text("secret", encoding="utf-8")
    html = (
        '<html><body><p style="font-family: Amiri">x</p>'
        '<a rel="attachment" href="annex.txt">annex</a>'
        f'<a rel="attachment" href="{outside.as_uri()}">secret</a></body></html>'
    )
    path = tmp_path / "letter.pdf"
    path.write_bytes(render_pdf(html, base_url=inside.parent))

    listing = run("pdfdetach", "-list", str(path))

    assert "annex.txt" in listing
    assert "secret.txt" not in listing


def test_pdf_without_base_allows_no_files(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("secret", encoding="utf-8")
    html = f'<html><body><a rel="attachment" href="{outside.as_uri()}">x</a></body></html>'
    path = tmp_path / "letter.pdf"
    path.write_bytes(render_pdf(html))

    assert "secret.txt" not in run("pdfdetach", "-list", str(path))
