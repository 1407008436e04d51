"""Formal letters: rendering templates in a sandbox, checking them statically, PDF output.

A letter template is named without language or suffix (``letters/reminder``) and stored once
per language as ``letters/reminder.fr.html.j2``, ``letters/reminder.ar.html.j2``. A
:class:`LetterRenderer` searches its template folders in order, so an institution's workflow
folder placed first overrides the shipped ``workflows/letters``. Rendering stores the JSON-safe
context beside the HTML, and :meth:`LetterRenderer.render_context` renders the same HTML again
from it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import TemplateError, TemplateNotFound

from case_workflow.errors import InvalidDefinition
from case_workflow.letters.checks import check_template
from case_workflow.letters.context import (
    DeadlineInfo,
    LetterInput,
    Party,
    build_context,
    letter_context_schema,
)
from case_workflow.letters.pdf import render_pdf
from case_workflow.letters.sandbox import create_environment, template_error, template_name

__all__ = [
    "DeadlineInfo",
    "LetterInput",
    "LetterRenderer",
    "Party",
    "RenderedLetter",
    "letter_context_schema",
    "render_pdf",
    "shipped_template_dir",
]

logger = logging.getLogger(__name__)


def shipped_template_dir() -> Path:
    """Return the folder of the shipped templates (it contains ``letters/``).

    In an installed wheel the ``workflows`` folder sits inside the package; in a source
    checkout it sits at the repository root.
    """
    package = Path(__file__).resolve().parent
    for candidate in (package / "workflows", package.parents[1] / "workflows"):
        if (candidate / "letters").is_dir():
            return candidate
    raise InvalidDefinition(
        "shipped letter templates not found",
        file=package / "workflows",
        fix="reinstall case_workflow; the wheel must contain case_workflow/workflows/letters",
    )


@dataclass(frozen=True)
class RenderedLetter:
    """A rendered letter: its HTML, the SHA-256 of that HTML and the context it came from."""

    letter: str
    language: str
    html: str
    sha256: str
    context: dict[str, object] = field(repr=False)


class LetterRenderer:
    """Renders and checks letter templates found in ``template_dirs``, searched in order."""

    def __init__(self, template_dirs: Sequence[Path]) -> None:
        if not template_dirs:
            raise InvalidDefinition(
                "no letter template folder given",
                fix="pass at least the shipped folder, case_workflow.notifications."
                "shipped_template_dir()",
            )
        self.template_dirs = tuple(Path(path) for path in template_dirs)
        self._environment = create_environment(self.template_dirs)
        self._search_path = ", ".join(str(path) for path in self.template_dirs)

    def render(self, template: str, data: LetterInput) -> RenderedLetter:
        """Render ``template`` in ``data.language`` for ``data``.

        Raises :class:`InvalidDefinition` when the template is missing, invalid or uses a
        value the context lacks (``deadline`` without ``data.deadline``), and
        :class:`~case_workflow.errors.InvalidInput` for an unknown zone or language.
        """
        context = build_context(data)
        html = self.render_context(template, data.language, context)
        digest = hashlib.sha256(html.encode("utf-8")).hexdigest()
        logger.debug(
            "rendered letter %s (%s) for dossier %s",
            template,
            data.language,
            data.dossier_reference,
        )
        return RenderedLetter(
            letter=data.letter, language=data.language, html=html, sha256=digest, context=context
        )

    def render_context(self, template: str, language: str, context: Mapping[str, object]) -> str:
        """Render ``template`` in ``language`` from a context, such as a stored one."""
        name = template_name(template, language)
        try:
            compiled = self._environment.get_template(name)
        except TemplateNotFound as error:
            raise InvalidDefinition(
                f"letter template {error.name!r} not found",
                file=name,
                value=error.name,
                fix=f"create {error.name} in one of the template folders: {self._search_path}",
            ) from None
        except TemplateError as error:
            raise template_error(error, name) from None
        try:
            return compiled.render(dict(context))
        except TemplateError as error:
            raise template_error(error, name) from None

    def check(self, template: str, language: str, *, with_deadline: bool) -> None:
        """Check statically that ``template`` exists in ``language`` and uses known values only.

        Raises :class:`InvalidDefinition` with the template file, line and offending value.
        """
        name = template_name(template, language)
        check_template(
            self._environment,
            name,
            letter_context_schema(with_deadline=with_deadline),
            search_path=self._search_path,
        )
