"""PDF output of rendered letters through WeasyPrint.

WeasyPrint takes over a second to import, so it is imported inside :func:`render_pdf` and
``import case_workflow`` stays light. Resources a letter refers to (logos, fonts) may only be
``data:`` URLs or files inside ``base_url``: templates are untrusted, and WeasyPrint would
otherwise fetch any URL or embed any readable file as a PDF attachment.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from case_workflow.errors import InvalidInput

__all__ = ["render_pdf"]

logger = logging.getLogger(__name__)


def _allowed(url: str, base: Path | None) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "data":
        return True
    if parts.scheme != "file" or base is None:
        return False
    target = Path(unquote(parts.path)).resolve()
    return target.is_relative_to(base)


def render_pdf(html: str, *, base_url: Path | None = None) -> bytes:
    """Render the letter ``html`` to PDF bytes.

    Relative URLs resolve against the folder ``base_url``; resources outside it and every
    network URL are refused (WeasyPrint logs each refusal and renders without it). Raises
    :class:`InvalidInput` when WeasyPrint is not installed.
    """
    # Imported here, not at module level: see the module docstring.
    try:
        from weasyprint import HTML
        from weasyprint.urls import URLFetcher
    except ImportError:
        raise InvalidInput(
            "PDF output needs WeasyPrint, which is not installed; "
            "install it with: pip install 'case_workflow[pdf]'"
        ) from None

    base = base_url.resolve() if base_url is not None else None

    class _LocalFetcher(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: Any = None) -> Any:
            if not _allowed(url, base):
                logger.warning("letter resource rejected, outside %s: %s", base, url[:200])
                raise ValueError(f"resource {url[:200]!r} is outside {base}")
            return super().fetch(url, headers)

    document = HTML(
        string=html,
        base_url=base.as_uri() + "/" if base is not None else None,
        url_fetcher=_LocalFetcher(allowed_protocols={"file", "data"}),
    )
    pdf: bytes = document.write_pdf()
    return pdf
