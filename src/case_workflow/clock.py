"""Clocks: the one place where case_workflow reads the time.

Every time-dependent function takes ``now`` or a :class:`Clock`, so tests and replays run on a
:class:`SimulatedClock` while production uses :class:`SystemClock`.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "SimulatedClock", "SystemClock", "ensure_utc"]


def ensure_utc(moment: datetime) -> datetime:
    """Return ``moment`` in UTC; raise ``ValueError`` for a naive datetime."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"naive datetime {moment.isoformat()} has no time zone; "
            "pass an aware datetime such as datetime(..., tzinfo=UTC)"
        )
    return moment.astimezone(UTC)


class Clock(Protocol):
    """Source of the current instant.

    ``now()`` returns a timezone-aware datetime in UTC and never goes backwards within one
    clock object.
    """

    def now(self) -> datetime: ...


class SystemClock:
    """The machine's clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class SimulatedClock:
    """A clock that moves only when set or advanced, and is safe to share between threads."""

    def __init__(self, start: datetime) -> None:
        self._now = ensure_utc(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, moment: datetime) -> None:
        """Move the clock to ``moment``; raise ``ValueError`` if that is in the past."""
        moment = ensure_utc(moment)
        with self._lock:
            if moment < self._now:
                raise ValueError(
                    f"simulated clock cannot go back from {self._now.isoformat()} "
                    f"to {moment.isoformat()}"
                )
            self._now = moment

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by ``delta`` and return the new instant."""
        with self._lock:
            if delta < timedelta(0):
                raise ValueError(f"cannot advance a clock by a negative delta {delta}")
            self._now += delta
            return self._now
