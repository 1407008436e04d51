"""Render the sample letters shown in docs/letters.md as PNG images.

Files two dossiers through the engine on a temporary SQLite database, one for a French and one
for an Arabic complainant. Renders each acknowledgement's PDF as the delivery relay does, and
converts its first page with poppler's ``pdftoppm`` at 60 dpi to keep the images small.

Usage: .venv/bin/python scripts/render_sample_letters.py [OUTPUT_FOLDER]
(default: docs/images). Needs WeasyPrint, the Amiri font and poppler-utils.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from case_workflow import Actor, Complainant, Engine, SimulatedClock
from case_workflow.delivery import render_letter_pdf

AGENT = Actor(name="Agent Alaoui", role="mediator_agent", institution="mediator")
# Language, complainant's name and address, subject of the complaint.
SAMPLES = (
    (
        "fr",
        "Fatima Zahra El Amrani",
        "Tamesna",
        "Lot non attribué à Tamesna après le tirage au sort de 2019",
    ),
    ("ar", "عائشة بنعلي", "تامسنا", "تأخر تسليم البقعة الأرضية بتامسنا بعد القرعة"),
)


def main() -> int:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/images")
    if shutil.which("pdftoppm") is None:
        print("pdftoppm not found; install poppler-utils", file=sys.stderr)
        return 1
    output.mkdir(parents=True, exist_ok=True)
    clock = SimulatedClock(datetime(2024, 6, 17, 9, 30, tzinfo=UTC))
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        with Engine(f"sqlite:///{folder}/samples.db", clock=clock, create_schema=True) as engine:
            for language, name, address, subject in SAMPLES:
                dossier = engine.file(
                    "mediator-alomrane",
                    actor=AGENT,
                    complainant=Complainant(name, address=address, language=language),
                    subject=subject,
                    respondent="al-omrane-tamesna",
                )
                letter = next(
                    item for item in engine.letters(dossier.reference) if item.language == language
                )
                pdf_path = folder / f"{letter.letter}.{language}.pdf"
                pdf_path.write_bytes(render_letter_pdf(letter.html, letter.issued_at))
                stem = output / f"letter-{letter.letter}-{language}"
                # The arguments are fixed options and paths this script built.
                command = ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile"]
                subprocess.run([*command, str(pdf_path), str(stem)], check=True)  # noqa: S603
                png = stem.with_suffix(".png")
                print(f"{png}: {png.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
