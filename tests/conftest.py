"""Shared fixtures: one store fixture runs each store and sweep test on SQLite and PostgreSQL.

PostgreSQL tests use the server named by ``CASE_WORKFLOW_TEST_PG_URL`` (default: the local
server's ``test`` database), each test in a schema of its own that is dropped afterwards. A
missing server skips them, except under CI (``CI=true``), where it fails them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from case_workflow import Actor, Engine, SimulatedClock

PG_URL = os.environ.get(
    "CASE_WORKFLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"

MEDIATOR_AGENT = Actor(name="Agent Alaoui", role="mediator_agent", institution="mediator")
RESPONDENT_AGENT = Actor(name="Agent Bennani", role="respondent_agent", institution="al-omrane")


def _postgresql_reachable() -> str | None:
    try:
        probe = create_engine(PG_URL)
        with probe.connect() as connection:
            connection.execute(text("SELECT 1"))
        probe.dispose()
    except OperationalError as error:
        return str(error.orig).strip().splitlines()[0]
    return None


@pytest.fixture(scope="session")
def postgresql_server() -> str:
    problem = _postgresql_reachable()
    if problem is not None:
        message = f"PostgreSQL at {PG_URL} unreachable: {problem}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return PG_URL


def _postgresql_schema_url(server_url: str) -> Iterator[str]:
    schema = f"cw_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in server_url else "?"
    try:
        yield f"{server_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def database_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/store.db"
        return
    server = request.getfixturevalue("postgresql_server")
    yield from _postgresql_schema_url(server)


@pytest.fixture
def clock() -> SimulatedClock:
    """A clock frozen on Monday 2024-01-15 09:00 in Morocco (08:00 UTC)."""
    return SimulatedClock(datetime(2024, 1, 15, 8, 0, tzinfo=UTC))


@pytest.fixture
def engine(database_url: str, clock: SimulatedClock) -> Iterator[Engine]:
    """An engine on the shipped Mediator-Al Omrane workflow with its schema created."""
    with Engine(database_url, clock=clock, create_schema=True) as built:
        yield built
