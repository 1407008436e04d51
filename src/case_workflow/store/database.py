"""Connecting to the store: SQLite by default, any SQLAlchemy URL otherwise.

SQLite runs in WAL mode and every write transaction starts with ``BEGIN IMMEDIATE`` so that
writers queue on the database lock (for up to ``busy_timeout``) instead of failing later with
"database is locked" when a read transaction tries to become a write one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from case_workflow.errors import InvalidInput, StoreError

__all__ = [
    "DEFAULT_URL",
    "READ_ONLY",
    "connect",
    "is_sqlite",
    "read_transaction",
    "retry_when_locked",
    "write_transaction",
]

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///case_workflow.db"
READ_ONLY = "case_workflow_read_only"
SQLITE_BUSY_TIMEOUT_MS = 30_000

T = TypeVar("T")


def connect(url: str = DEFAULT_URL, **engine_options: Any) -> Engine:
    """Create a SQLAlchemy engine for ``url`` set up for the store.

    Plain file paths are accepted as SQLite databases.
    """
    if "://" not in url:
        url = f"sqlite:///{Path(url)}"
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InvalidInput(
            f"invalid database URL {url!r}; use e.g. 'sqlite:///case_workflow.db' or "
            "'postgresql+psycopg://user@host/dbname'"
        ) from None
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = _sqlite_engine(parsed.render_as_string(hide_password=False), engine_options)
        else:
            engine_options.setdefault("pool_pre_ping", True)
            engine = create_engine(parsed, **engine_options)
    except NoSuchModuleError:
        raise InvalidInput(
            f"no SQLAlchemy dialect for {parsed.drivername!r}; install its driver, "
            "e.g. pip install 'case_workflow[postgresql]'"
        ) from None
    return engine


def _sqlite_engine(url: str, engine_options: dict[str, Any]) -> Engine:
    engine_options.setdefault("connect_args", {})
    engine_options["connect_args"].setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    engine_options["connect_args"].setdefault("check_same_thread", False)
    engine = create_engine(url, **engine_options)

    @event.listens_for(engine, "connect")
    def _set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """Open one write transaction: committed on success, rolled back on any error."""
    with engine.begin() as connection:
        yield connection


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """Open a transaction that only reads; on SQLite it does not take the write lock."""
    with engine.connect() as plain:
        connection = plain.execution_options(**{READ_ONLY: True})
        with connection.begin():
            yield connection


def _is_lock_error(error: OperationalError) -> bool:
    text = str(error.orig).lower()
    return "database is locked" in text or "database is busy" in text or "deadlock" in text


def retry_when_locked(action: Callable[[], T], *, attempts: int = 8, first_wait: float = 0.05) -> T:
    """Run ``action``, retrying with exponential backoff while the database reports a lock.

    SQLite waits ``busy_timeout`` on its own; this covers the rarer cases where it returns
    "database is locked" at once, and PostgreSQL deadlock reports.
    """
    wait = first_wait
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except OperationalError as error:
            if not _is_lock_error(error) or attempt == attempts:
                if _is_lock_error(error):
                    raise StoreError(
                        f"database still locked after {attempts} attempts; another process "
                        "holds a long transaction, try again later"
                    ) from error
                raise
            log.warning("database locked, retry %d of %d in %.2fs", attempt, attempts, wait)
            time.sleep(wait)
            wait *= 2
    raise AssertionError("unreachable")


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())
