"""Tests of letter rendering, the letter context and the static template checks."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape

from case_workflow.errors import InvalidDefinition, InvalidInput
from case_workflow.letters.context import build_context
from case_workflow.letters.dates import MOROCCAN_MONTHS_AR, format_hijri, format_long_date
from case_workflow.letters.sandbox import close_bidi_controls
from case_workflow.notifications import (
    DeadlineInfo,
    LetterInput,
    LetterRenderer,
    Party,
    letter_context_schema,
    shipped_template_dir,
)

LETTERS = (
    "acknowledgement",
    "transmission",
    "information_request",
    "reminder",
    "formal_notice",
    "escalation_notice",
    "answer_forwarded",
    "closure",
    "inadmissibility",
    "redirection",
    "recommendation",
    "extension",
)
DEADLINE_LETTERS = frozenset({"reminder", "formal_notice", "escalation_notice", "extension"})
LANGUAGES = ("fr", "ar")

RLO = "\u202e"
PDF = "\u202c"

MEDIATOR = Party("mediator", "Institution du Médiateur du Royaume", "Rabat")
AL_OMRANE = Party("al-omrane-rabat", "Al Omrane Rabat-Salé-Kénitra", "Rabat", "contact@example.ma")
CITIZEN = Party("complainant", "Fatima Zahra El Amrani", "12 rue des Orangers, Salé")
DEADLINE = DeadlineInfo(
    name="answer",
    due_at=datetime(2024, 8, 16, 22, 59, 59, tzinfo=UTC),
    started_at=datetime(2024, 6, 17, 9, 0, tzinfo=UTC),
    days_overdue=3,
    level=1,
    explanation_text="60 calendar days from 2024-06-17",
)


def make_input(letter: str = "reminder", language: str = "fr", **changes: object) -> LetterInput:
    data = LetterInput(
        letter=letter,
        language=language,
        registry_number="IMR/2024/00042",
        issued_at=datetime(2024, 8, 14, 23, 30, tzinfo=UTC),
        zone="Africa/Casablanca",
        subject="Relance" if language == "fr" else "تذكير",
        attachments=("Copie de la plainte",),
        sender=MEDIATOR,
        sender_place="Rabat" if language == "fr" else "الرباط",
        sender_signatory="Le Médiateur du Royaume",
        recipient=AL_OMRANE,
        dossier_reference="MED-2024-0042",
        external_reference="AO/RB/2024/118",
        dossier_subject="Lot non livré à Tamesna",
        filed_at=datetime(2024, 6, 10, 10, 0, tzinfo=UTC),
        state="transmitted",
        complainant=CITIZEN,
        respondent=AL_OMRANE,
        region="Rabat-Salé-Kénitra",
        urgent=False,
        escalation_level=0,
        event="transmit",
        actor_name="Agent Bennani",
        comment="",
        outcome="",
        deadline=DEADLINE if letter in DEADLINE_LETTERS else None,
    )
    return dataclasses.replace(data, **changes)  # type: ignore[arg-type]


@pytest.fixture
def renderer() -> LetterRenderer:
    return LetterRenderer([shipped_template_dir()])


def write_template(folder: Path, name: str, text: str) -> Path:
    path = folder / "letters" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# Rendering the shipped letters


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("letter", LETTERS)
def test_render_every_letter(renderer: LetterRenderer, letter: str, language: str) -> None:
    data = make_input(letter, language, comment="Copie de la CIN", outcome="resolved")

    rendered = renderer.render(f"letters/{letter}", data)

    assert rendered.letter == letter
    assert rendered.language == language
    assert rendered.sha256 == hashlib.sha256(rendered.html.encode("utf-8")).hexdigest()
    assert f'<html lang="{language}"' in rendered.html
    assert "IMR/2024/00042" in rendered.html
    assert "MED-2024-0042" in rendered.html
    assert "None" not in rendered.html
    assert "Undefined" not in rendered.html


@pytest.mark.parametrize("letter", LETTERS)
def test_arabic_letter_layout(renderer: LetterRenderer, letter: str) -> None:
    html = renderer.render(f"letters/{letter}", make_input(letter, "ar")).html

    assert '<html lang="ar" dir="rtl">' in html
    assert "الرقم الترتيبي" in html
    assert "الموضوع" in html
    assert "المرجع" in html
    assert "15 غشت 2024" in html
    assert "11 صفر 1446 هـ" in html
    assert '<bdi dir="ltr">\u2066IMR/2024/00042\u2069</bdi>' in html


@pytest.mark.parametrize("letter", LETTERS)
def test_french_letter_layout(renderer: LetterRenderer, letter: str) -> None:
    html = renderer.render(f"letters/{letter}", make_input(letter, "fr")).html

    assert '<html lang="fr" dir="ltr">' in html
    assert "N° d&#39;ordre" in html or "N° d'ordre" in html
    assert "Objet :" in html
    assert "Réf. :" in html
    assert "P.J. :" in html
    assert "Rabat, le 15 août 2024" in html


def test_deadline_dates_in_letter(renderer: LetterRenderer) -> None:
    html = renderer.render("letters/reminder", make_input("reminder", "ar")).html

    assert "17 يونيو 2024" in html
    assert "16 غشت 2024" in html
    assert "12 صفر 1446 هـ" in html


def test_closure_outcome_wording(renderer: LetterRenderer) -> None:
    known = renderer.render("letters/closure", make_input("closure", outcome="resolved")).html
    unknown = renderer.render("letters/closure", make_input("closure", outcome="settled")).html

    assert "votre demande a été satisfaite" in known
    assert "settled" in unknown


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    "outcome",
    [
        "resolved",
        "partially_resolved",
        "not_resolved",
        "withdrawn",
        "referred_to_head_of_government",
    ],
)
def test_closure_outcome_worded(renderer: LetterRenderer, outcome: str, language: str) -> None:
    data = make_input("closure", language, outcome=outcome)

    html = renderer.render("letters/closure", data).html

    assert outcome not in html


def test_urgent_flag_printed(renderer: LetterRenderer) -> None:
    urgent = renderer.render("letters/transmission", make_input("transmission", urgent=True))
    normal = renderer.render("letters/transmission", make_input("transmission"))

    assert "URGENT" in urgent.html
    assert "URGENT" not in normal.html


def test_salutation_depends_on_recipient(renderer: LetterRenderer) -> None:
    to_citizen = make_input("acknowledgement", "ar", recipient=CITIZEN)
    to_respondent = make_input("transmission", "ar")

    assert "السلام عليكم" in renderer.render("letters/acknowledgement", to_citizen).html
    assert "سلام تام" in renderer.render("letters/transmission", to_respondent).html


def test_deadline_letter_without_deadline(renderer: LetterRenderer) -> None:
    data = make_input("reminder", deadline=None)

    with pytest.raises(InvalidDefinition) as caught:
        renderer.render("letters/reminder", data)

    assert caught.value.file is not None
    assert caught.value.file.endswith("reminder.fr.html.j2")
    assert caught.value.line is not None
    assert "deadline" in str(caught.value)


# Re-rendering from the stored context


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("letter", ["acknowledgement", "reminder", "closure"])
def test_rerender_stored_context(renderer: LetterRenderer, letter: str, language: str) -> None:
    rendered = renderer.render(
        f"letters/{letter}", make_input(letter, language, outcome="resolved")
    )
    stored = json.loads(json.dumps(rendered.context))

    html = renderer.render_context(f"letters/{letter}", language, stored)

    assert hashlib.sha256(html.encode("utf-8")).hexdigest() == rendered.sha256


def test_context_matches_schema() -> None:
    for deadline in (None, DEADLINE):
        context = build_context(make_input(deadline=deadline))
        built = {name: frozenset(value) for name, value in context.items()}  # type: ignore[call-overload]

        assert built == letter_context_schema(with_deadline=deadline is not None)


def test_context_is_json_safe() -> None:
    context = build_context(make_input())

    assert json.loads(json.dumps(context)) == context


# Citizen text is data


HOSTILE_NAME = f"<script>alert(1)</script>{{{{ 7*7 }}}}{RLO}evil"


def test_hostile_text_is_escaped(renderer: LetterRenderer) -> None:
    complainant = Party("complainant", HOSTILE_NAME)
    data = make_input(
        "transmission",
        complainant=complainant,
        dossier_subject="{% raw %}<img src=x onerror=alert(1)>",
    )

    html = renderer.render("letters/transmission", data).html

    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "{{ 7*7 }}" in html
    assert "49" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "{% raw %}" in html


@pytest.mark.parametrize("language", LANGUAGES)
def test_bidi_override_closed_in_bdi(renderer: LetterRenderer, language: str) -> None:
    complainant = Party("complainant", f"Ali {RLO}Ahmed")
    data = make_input("transmission", language, complainant=complainant)

    html = renderer.render("letters/transmission", data).html

    matches = list(re.finditer(RLO, html))
    assert matches
    for match in matches:
        isolate_start = html.rfind("<bdi>", 0, match.start())
        assert isolate_start > html.rfind("</bdi>", 0, match.start())
        isolate_end = html.index("</bdi>", match.end())
        assert PDF in html[match.end() : isolate_end]


def test_close_bidi_controls() -> None:
    assert close_bidi_controls("plain") == "plain"
    assert close_bidi_controls(f"a{RLO}b") == f"a{RLO}b{PDF}"
    assert close_bidi_controls("a\u2067b") == "a\u2067b\u2069"
    assert close_bidi_controls(f"a{RLO}b{PDF}") == f"a{RLO}b{PDF}"


@settings(max_examples=60, deadline=None)
@given(name=st.text(min_size=1, max_size=60))
def test_any_name_printed_as_text(name: str) -> None:
    renderer = LetterRenderer([shipped_template_dir()])
    data = make_input("acknowledgement", recipient=Party("complainant", name))

    html = renderer.render("letters/acknowledgement", data).html

    assert str(escape(close_bidi_controls(name))) in html


def test_sandbox_blocks_internals(tmp_path: Path, renderer: LetterRenderer) -> None:
    write_template(tmp_path, "probe.fr.html.j2", "{{ dossier.reference.__class__.__mro__ }}")
    probing = LetterRenderer([tmp_path, shipped_template_dir()])

    with pytest.raises(InvalidDefinition):
        probing.render("letters/probe", make_input())


# Template folders


def test_override_folder_wins(tmp_path: Path) -> None:
    write_template(tmp_path, "acknowledgement.fr.html.j2", "OVERRIDE {{ dossier.reference }}")
    renderer = LetterRenderer([tmp_path, shipped_template_dir()])

    french = renderer.render("letters/acknowledgement", make_input("acknowledgement"))
    arabic = renderer.render("letters/acknowledgement", make_input("acknowledgement", "ar"))

    assert french.html == "OVERRIDE MED-2024-0042"
    assert '<html lang="ar" dir="rtl">' in arabic.html


def test_override_layout_used_by_shipped(tmp_path: Path) -> None:
    write_template(
        tmp_path, "_layout.fr.html.j2", "AL OMRANE {{ sender.name }}{% block body %}{% endblock %}"
    )
    renderer = LetterRenderer([tmp_path, shipped_template_dir()])

    html = renderer.render("letters/acknowledgement", make_input("acknowledgement")).html

    assert html.startswith("AL OMRANE Institution du Médiateur du Royaume")
    assert "Nous accusons réception" in html


def test_renderer_needs_folder() -> None:
    with pytest.raises(InvalidDefinition):
        LetterRenderer([])


# Static checks


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("letter", LETTERS)
def test_check_shipped_letter(renderer: LetterRenderer, letter: str, language: str) -> None:
    renderer.check(f"letters/{letter}", language, with_deadline=letter in DEADLINE_LETTERS)


@pytest.mark.parametrize("letter", sorted(DEADLINE_LETTERS))
def test_check_deadline_needed(renderer: LetterRenderer, letter: str) -> None:
    with pytest.raises(InvalidDefinition) as caught:
        renderer.check(f"letters/{letter}", "fr", with_deadline=False)

    assert caught.value.value == "deadline"
    assert caught.value.line is not None
    assert caught.value.file is not None
    assert caught.value.file.endswith(f"{letter}.fr.html.j2")


def test_check_misspelt_attribute(tmp_path: Path) -> None:
    path = write_template(
        tmp_path,
        "bad.fr.html.j2",
        '{% extends "letters/_layout.fr.html.j2" %}\n{% block body %}\n'
        "<p>{{ dossier.refrence }}</p>\n{% endblock %}\n",
    )
    renderer = LetterRenderer([tmp_path, shipped_template_dir()])

    with pytest.raises(InvalidDefinition) as caught:
        renderer.check("letters/bad", "fr", with_deadline=False)

    assert caught.value.file == str(path)
    assert caught.value.line == 3
    assert caught.value.value == "dossier.refrence"
    assert caught.value.fix is not None
    assert "dossier.reference" in caught.value.fix
    assert str(caught.value).startswith(f"{path}:3: ")


def test_check_item_syntax(tmp_path: Path) -> None:
    write_template(tmp_path, "bad.fr.html.j2", "\n{{ event['coment'] }}")
    renderer = LetterRenderer([tmp_path])

    with pytest.raises(InvalidDefinition) as caught:
        renderer.check("letters/bad", "fr", with_deadline=False)

    assert caught.value.line == 2
    assert caught.value.value == "event.coment"


def test_check_unknown_name(tmp_path: Path) -> None:
    write_template(tmp_path, "bad.fr.html.j2", "{{ letter.date }}\n\n{{ dosier.reference }}")
    renderer = LetterRenderer([tmp_path])

    with pytest.raises(InvalidDefinition) as caught:
        renderer.check("letters/bad", "fr", with_deadline=False)

    assert caught.value.line == 3
    assert caught.value.value == "dosier"
    assert caught.value.fix is not None
    assert "dossier" in caught.value.fix


def test_check_included_template(tmp_path: Path) -> None:
    included = write_template(tmp_path, "_part.html.j2", "ok\n{{ complainant.phone }}")
    write_template(tmp_path, "bad.fr.html.j2", '{% include "letters/_part.html.j2" %}')
    renderer = LetterRenderer([tmp_path])

    with pytest.raises(InvalidDefinition) as caught:
        renderer.check("letters/bad", "fr", with_deadline=False)

    assert caught.value.file == str(included)
    assert caught.value.line == 2
    assert caught.value.value == "complainant.phone"


def test_check_local_names_allowed(tmp_path: Path) -> None:
    write_template(
        tmp_path,
        "good.fr.html.j2",
        "{% set labels = {'a': 'b'} %}{% for item in letter.attachments %}{{ item.title }}"
        "{{ loop.index }}{% endfor %}{{ labels.get('a') }}{{ range(2)|list }}",
    )
    renderer = LetterRenderer([tmp_path])

    renderer.check("letters/good", "fr", with_deadline=False)


def test_check_syntax_error(tmp_path: Path) -> None:
    path = write_template(tmp_path, "bad.fr.html.j2", "line one\n{% if %}\n{% endif %}")
    renderer = LetterRenderer([tmp_path])

    with pytest.raises(InvalidDefinition) as caught:
        renderer.check("letters/bad", "fr", with_deadline=False)

    assert caught.value.file == str(path)
    assert caught.value.line == 2


def test_check_unknown_filter(tmp_path: Path) -> None:
    write_template(tmp_path, "bad.fr.html.j2", "{{ dossier.reference|shout }}")
    renderer = LetterRenderer([tmp_path])

    with pytest.raises(InvalidDefinition) as caught:
        renderer.check("letters/bad", "fr", with_deadline=False)

    assert "shout" in str(caught.value)


def test_check_dynamic_include(tmp_path: Path) -> None:
    write_template(tmp_path, "bad.fr.html.j2", "{% include letter.name %}")
    renderer = LetterRenderer([tmp_path])

    with pytest.raises(InvalidDefinition) as caught:
        renderer.check("letters/bad", "fr", with_deadline=False)

    assert "literal" in str(caught.value)


def test_check_missing_template(renderer: LetterRenderer) -> None:
    with pytest.raises(InvalidDefinition) as caught:
        renderer.check("letters/nonexistent", "fr", with_deadline=False)

    assert caught.value.value == "letters/nonexistent.fr.html.j2"
    assert caught.value.fix is not None
    assert str(shipped_template_dir()) in caught.value.fix


def test_render_missing_language(renderer: LetterRenderer) -> None:
    with pytest.raises(InvalidDefinition) as caught:
        renderer.render("letters/reminder", make_input("reminder", "en"))

    assert "reminder.en.html.j2" in str(caught.value)


@pytest.mark.parametrize("template", ["", "/etc/passwd", "letters/reminder.fr.html.j2"])
def test_invalid_template_name(renderer: LetterRenderer, template: str) -> None:
    with pytest.raises(InvalidDefinition):
        renderer.check(template, "fr", with_deadline=False)


def test_invalid_language(renderer: LetterRenderer) -> None:
    with pytest.raises(InvalidDefinition):
        renderer.check("letters/reminder", "../fr", with_deadline=True)


def test_render_error_names_line(tmp_path: Path) -> None:
    path = write_template(tmp_path, "bad.fr.html.j2", "a\nb\n{{ dossier.refrence }}")
    renderer = LetterRenderer([tmp_path])

    with pytest.raises(InvalidDefinition) as caught:
        renderer.render("letters/bad", make_input())

    assert caught.value.file == str(path)
    assert caught.value.line == 3
    assert "refrence" in str(caught.value)


# Dates


def test_local_date_in_zone() -> None:
    summer = build_context(make_input(issued_at=datetime(2024, 8, 14, 23, 30, tzinfo=UTC)))
    ramadan = build_context(make_input(issued_at=datetime(2024, 3, 20, 23, 30, tzinfo=UTC)))

    assert summer["letter"]["date_iso"] == "2024-08-15"  # type: ignore[index]
    assert ramadan["letter"]["date_iso"] == "2024-03-20"  # type: ignore[index]


def test_moroccan_month_names() -> None:
    names = [format_long_date(date(2024, month, 1), "ar").split()[1] for month in range(1, 13)]

    assert names == list(MOROCCAN_MONTHS_AR)
    assert names[6] == "يوليوز"
    assert names[7] == "غشت"


def test_french_date_uses_babel() -> None:
    assert format_long_date(date(2024, 8, 1), "fr") == "1 août 2024"
    assert format_long_date(date(2024, 2, 29), "fr") == "29 février 2024"


def test_hijri_date() -> None:
    assert format_hijri(date(2024, 6, 17)) == "11 ذو الحجة 1445 هـ"
    assert format_hijri(date(2090, 1, 1)) == ""


def test_unknown_zone() -> None:
    with pytest.raises(InvalidInput):
        build_context(make_input(zone="Africa/Atlantis"))
    with pytest.raises(InvalidInput):
        build_context(make_input(zone="../etc/passwd"))


def test_naive_datetime_rejected() -> None:
    with pytest.raises(InvalidInput):
        build_context(make_input(issued_at=datetime(2024, 8, 14, 12, 0)))


def test_unknown_language_rejected() -> None:
    with pytest.raises(InvalidInput):
        build_context(make_input(language="zz"))


def test_import_skips_weasyprint() -> None:
    code = (
        "import sys, case_workflow.notifications\n"
        "assert 'weasyprint' not in sys.modules, 'weasyprint imported'\n"
    )
    src = Path(__file__).resolve().parents[1] / "src"

    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(src)},
    )

    assert result.returncode == 0, result.stderr
