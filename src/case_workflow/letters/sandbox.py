"""The sandboxed Jinja2 environment that letter templates run in, and its error translation.

Templates are untrusted text (an institution may edit its own), so they run in a
``SandboxedEnvironment`` with ``StrictUndefined``: a missing value raises instead of printing a
blank. Autoescaping is on for HTML templates. Every printed string has its Unicode bidirectional
embeddings and isolates closed (see :func:`close_bidi_controls`), so a right-to-left override
typed into a complainant's name cannot reverse the text printed after it. The ``isolate`` and
``ltr`` filters wrap a value in ``<bdi>`` for mixed Arabic and Latin text.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Sequence
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

from case_workflow.errors import InvalidDefinition

__all__ = [
    "TEMPLATE_SUFFIX",
    "close_bidi_controls",
    "create_environment",
    "template_error",
    "template_name",
]

TEMPLATE_SUFFIX = ".html.j2"

_LANGUAGE = re.compile(r"^[a-z]{2,3}([_-][A-Za-z]{2,4})?$")

# Explicit embeddings and overrides (LRE, RLE, LRO, RLO) end with PDF. Isolates
# (LRI, RLI, FSI) end with PDI.
_EMBEDDINGS = frozenset("\u202a\u202b\u202d\u202e")
_POP_EMBEDDING = "\u202c"
_ISOLATES = frozenset("\u2066\u2067\u2068")
_POP_ISOLATE = "\u2069"
_FIRST_STRONG_ISOLATE = "\u2068"
_LEFT_TO_RIGHT_ISOLATE = "\u2066"


def close_bidi_controls(text: str) -> str:
    """Append the PDF and PDI characters that close every embedding and isolate in ``text``.

    Surplus closers are harmless: the Unicode bidirectional algorithm ignores a PDF or PDI that
    matches nothing. The visible text is unchanged.
    """
    open_embeddings = sum(char in _EMBEDDINGS for char in text) - text.count(_POP_EMBEDDING)
    open_isolates = sum(char in _ISOLATES for char in text) - text.count(_POP_ISOLATE)
    return text + _POP_EMBEDDING * max(open_embeddings, 0) + _POP_ISOLATE * max(open_isolates, 0)


def _finalize(value: object) -> object:
    if isinstance(value, str) and not isinstance(value, Markup):
        return close_bidi_controls(value)
    return value


def _isolate(value: object) -> Markup:
    """Print ``value`` escaped, isolated from the surrounding text's direction."""
    text = close_bidi_controls(str(value))
    return Markup("<bdi>{}{}{}</bdi>").format(_FIRST_STRONG_ISOLATE, escape(text), _POP_ISOLATE)


def _ltr(value: object) -> Markup:
    """Print ``value`` escaped, as left-to-right text (reference numbers inside Arabic text)."""
    text = close_bidi_controls(str(value))
    return Markup('<bdi dir="ltr">{}{}{}</bdi>').format(
        _LEFT_TO_RIGHT_ISOLATE, escape(text), _POP_ISOLATE
    )


def _autoescape(name: str | None) -> bool:
    return name is None or name.endswith((".html.j2", ".html", ".htm"))


def create_environment(template_dirs: Sequence[Path]) -> SandboxedEnvironment:
    """Create the sandbox that loads templates from ``template_dirs``, first match wins."""
    environment = SandboxedEnvironment(
        loader=FileSystemLoader([str(path) for path in template_dirs]),
        autoescape=_autoescape,
        undefined=StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["isolate"] = _isolate
    environment.filters["ltr"] = _ltr
    return environment


def template_name(template: str, language: str) -> str:
    """Return the file name of ``template`` in ``language``, ``letters/x.fr.html.j2``."""
    if not _LANGUAGE.match(language):
        raise InvalidDefinition(
            f"invalid letter language {language!r}",
            value=language,
            fix="use a language code such as 'fr', 'ar' or 'en'",
        )
    if not template or template.startswith("/") or template.endswith(".j2"):
        raise InvalidDefinition(
            f"invalid letter template {template!r}",
            value=template,
            fix="name the template without language or suffix, for example 'letters/reminder'",
        )
    return f"{template}.{language}{TEMPLATE_SUFFIX}"


def _template_frame(error: BaseException) -> tuple[str, int] | None:
    # Jinja rewrites the traceback so that template frames carry the template's file and line.
    frames = traceback.extract_tb(error.__traceback__)
    for frame in reversed(frames):
        if frame.filename.endswith(".j2") or frame.filename.endswith(".css"):
            return frame.filename, frame.lineno or 0
    return None


def template_error(error: TemplateError, name: str) -> InvalidDefinition:
    """Translate a Jinja2 error raised while compiling or rendering ``name``."""
    if isinstance(error, TemplateSyntaxError):
        return InvalidDefinition(
            f"invalid template syntax: {error.message}",
            file=error.filename or error.name or name,
            line=error.lineno,
            value=name,
            fix="correct the Jinja2 syntax at that line",
        )
    frame = _template_frame(error)
    file, line = frame if frame is not None else (name, None)
    return InvalidDefinition(
        f"rendering template {name!r} failed: {error.message or type(error).__name__}",
        file=file,
        line=line,
        value=name,
        fix="use only the letter context's variables (run the template check for the list)",
    )
