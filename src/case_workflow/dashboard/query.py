"""The dashboard's filter form: parsing the GET parameters and writing them back into links.

Parameters: ``respondent``, ``region``, ``filed_from``, ``filed_to`` and ``as_of`` (ISO dates,
``as_of`` meaning the end of that local day) and ``lang`` (fr, ar or en). Empty values mean "no
restriction"; unknown parameters are ignored. Invalid values raise :class:`InvalidInput`, which
the pages show as a 400 response.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, tzinfo
from urllib.parse import urlencode

from case_workflow.errors import InvalidInput
from case_workflow.reporting.labels import LANGUAGES
from case_workflow.reporting.model import ReportFilter
from case_workflow.reporting.sqltime import local_midnight

__all__ = ["MAX_VALUE_LENGTH", "ReportQuery"]

# The respondent and region columns hold at most 100 characters.
MAX_VALUE_LENGTH = 100


@dataclass(frozen=True)
class ReportQuery:
    """The filters of one dashboard request."""

    respondent: str | None = None
    region: str | None = None
    filed_from: date | None = None
    filed_to: date | None = None
    as_of: date | None = None
    language: str = "fr"

    @classmethod
    def parse(cls, parameters: Mapping[str, str]) -> ReportQuery:
        """Read the filters from query parameters; raise InvalidInput naming a bad value."""
        language = _text(parameters, "lang") or "fr"
        if language not in LANGUAGES:
            raise InvalidInput(f"invalid lang {language!r}; use one of {', '.join(LANGUAGES)}")
        query = cls(
            respondent=_text(parameters, "respondent"),
            region=_text(parameters, "region"),
            filed_from=_date(parameters, "filed_from"),
            filed_to=_date(parameters, "filed_to"),
            as_of=_date(parameters, "as_of"),
            language=language,
        )
        if query.filed_from and query.filed_to and query.filed_from > query.filed_to:
            raise InvalidInput(
                f"invalid period: filed_from {query.filed_from} is after filed_to "
                f"{query.filed_to}; swap the dates or clear one"
            )
        return query

    def report_filter(self) -> ReportFilter:
        return ReportFilter(
            respondent=self.respondent,
            region=self.region,
            filed_from=self.filed_from,
            filed_to=self.filed_to,
        )

    def instant(self, now: datetime, zone: tzinfo) -> datetime:
        """Return the report's instant: the end of the ``as_of`` local day, at most ``now``.

        Without ``as_of`` the report is as of ``now``. A day that has not ended yet is cut at
        ``now``, so that deadlines due later today are not counted overdue in advance.
        """
        if self.as_of is None:
            return now
        end = local_midnight(self.as_of + timedelta(days=1), zone) - timedelta(microseconds=1)
        return min(end, now)

    def parameters(self, **changes: object) -> dict[str, str]:
        """Return the non-empty filters as query parameters, with ``changes`` applied."""
        query = replace(self, **changes) if changes else self  # type: ignore[arg-type]
        values = {
            "respondent": query.respondent,
            "region": query.region,
            "filed_from": query.filed_from.isoformat() if query.filed_from else None,
            "filed_to": query.filed_to.isoformat() if query.filed_to else None,
            "as_of": query.as_of.isoformat() if query.as_of else None,
            "lang": query.language,
        }
        return {name: value for name, value in values.items() if value}

    def query_string(self, **changes: object) -> str:
        """Return ``?`` and the URL-encoded parameters, for links that keep the filters."""
        return "?" + urlencode(self.parameters(**changes))


def _text(parameters: Mapping[str, str], name: str) -> str | None:
    value = parameters.get(name, "").strip()
    if len(value) > MAX_VALUE_LENGTH:
        raise InvalidInput(
            f"invalid {name}: {len(value)} characters; give at most {MAX_VALUE_LENGTH}"
        )
    return value or None


def _date(parameters: Mapping[str, str], name: str) -> date | None:
    value = _text(parameters, name)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"invalid {name} {value!r}; write a date such as 2025-06-30") from None
