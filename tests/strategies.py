"""Hypothesis strategies shared by the time-layer tests."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

from case_workflow.definition.model import DueTime
from case_workflow.durations import Duration, TimeUnit

# Years covered by the observed table (2022-2026) and two estimated years after it.
FIRST = datetime(2022, 1, 1)
LAST = datetime(2028, 12, 31)

instants = st.datetimes(min_value=FIRST, max_value=LAST, timezones=st.just(UTC))
due_times = st.sampled_from(list(DueTime))


def durations(
    units: tuple[TimeUnit, ...] = tuple(TimeUnit), min_amount: int = 0, max_amount: int = 60
) -> st.SearchStrategy[Duration]:
    """Durations in ``units`` with an amount from ``min_amount`` to ``max_amount``."""
    return st.builds(Duration, st.integers(min_amount, max_amount), st.sampled_from(list(units)))


working_days = durations((TimeUnit.WORKING_DAYS,), 1, 40)
