"""Time zones read from the pinned ``tzdata`` package, never from the system's zone files.

The standard ``zoneinfo.ZoneInfo(key)`` constructor searches the system's zone files first, and
those can be stale: files older than IANA release 2026c still predict Ramadan clock changes in
Morocco after 2026-09-20, when Africa/Casablanca moved to permanent UTC+0. :func:`load_zone`
reads the file shipped in the ``tzdata`` package instead, so every machine computes the same
offsets.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
import zoneinfo
from datetime import datetime, timedelta, tzinfo

from case_workflow.errors import InvalidInput

__all__ = ["format_utc_offset", "load_zone", "resolve_zone", "zone_name"]

_ZONE_NAME = re.compile(r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$")


@functools.cache
def load_zone(name: str) -> zoneinfo.ZoneInfo:
    """Load the IANA zone ``name`` from the ``tzdata`` package; the result is cached.

    Raise :class:`InvalidInput` naming the value when no such zone exists. Zones built this way
    cannot be pickled (a ``ZoneInfo.from_file`` restriction), so store instants in UTC.
    """
    if not isinstance(name, str) or not _ZONE_NAME.match(name) or ".." in name:
        raise _unknown_zone(name)
    resource = importlib.resources.files("tzdata.zoneinfo").joinpath(*name.split("/"))
    if not resource.is_file():
        raise _unknown_zone(name)
    with resource.open("rb") as stream:
        return zoneinfo.ZoneInfo.from_file(stream, key=name)


def _unknown_zone(name: object) -> InvalidInput:
    return InvalidInput(
        f"unknown time zone {name!r}; use an IANA zone name such as 'Africa/Casablanca' "
        "or 'America/New_York'"
    )


def resolve_zone(zone: tzinfo | str) -> tzinfo:
    """Return ``zone`` itself, or the zone it names loaded with :func:`load_zone`."""
    if isinstance(zone, str):
        return load_zone(zone)
    if not isinstance(zone, tzinfo):
        raise InvalidInput(
            f"invalid time zone {zone!r}; pass a zone name such as 'Africa/Casablanca' "
            "or a tzinfo object"
        )
    return zone


def zone_name(zone: tzinfo) -> str:
    """Return the IANA key of ``zone`` when it has one, else its ``str()``."""
    key = getattr(zone, "key", None)
    return key if isinstance(key, str) else str(zone)


def format_utc_offset(moment: datetime) -> str:
    """Format the UTC offset of an aware ``moment`` as ``+01:00``."""
    offset = moment.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
