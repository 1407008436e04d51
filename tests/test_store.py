"""Store: migrations match the declared tables, instants stay UTC, schema checks help."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, select

import case_workflow.store.exchange_tables  # noqa: F401  (registers its tables)
from case_workflow import StoreError
from case_workflow.store.database import connect, read_transaction
from case_workflow.store.schema import check_schema, current_revision, head_revision, upgrade
from case_workflow.store.tables import metadata, registry_counters

pytestmark = pytest.mark.usefixtures("database_url")


def test_migrations_create_declared_tables(database_url: str) -> None:
    database = connect(database_url)
    upgrade(database)
    with database.connect() as connection:
        context = MigrationContext.configure(connection)
        differences = [
            difference
            for difference in compare_metadata(context, metadata)
            if not (difference[0] == "remove_table" and difference[1].name == "cw_alembic_version")
        ]
    database.dispose()
    assert differences == []


def test_upgrade_twice_is_harmless(database_url: str) -> None:
    database = connect(database_url)
    upgrade(database)
    upgrade(database)
    assert current_revision(database) == head_revision()
    database.dispose()


def test_missing_schema_names_the_fix(database_url: str) -> None:
    database = connect(database_url)
    with pytest.raises(StoreError, match="case-workflow init"):
        check_schema(database)
    database.dispose()


def test_instants_come_back_in_utc(database_url: str) -> None:
    from case_workflow.store.tables import calendar_changes

    database = connect(database_url)
    upgrade(database)
    casablanca_summer = timezone(timedelta(hours=1))
    moment = datetime(2024, 6, 17, 0, 30, tzinfo=casablanca_summer)
    with database.begin() as connection:
        connection.execute(
            insert(calendar_changes),
            {
                "calendar": "c",
                "action": "add",
                "day": moment.date(),
                "name": "n",
                "kind": "holiday",
                "actor": "a",
                "created_at": moment,
            },
        )
    with read_transaction(database) as connection:
        stored = connection.execute(select(calendar_changes.c.created_at)).scalar_one()
    database.dispose()
    assert stored == moment
    assert stored.tzinfo == UTC
    assert stored.hour == 23


def test_naive_instant_rejected(database_url: str) -> None:
    from sqlalchemy.exc import StatementError

    from case_workflow.store.tables import calendar_changes

    database = connect(database_url)
    upgrade(database)
    with pytest.raises(StatementError, match="naive datetime"), database.begin() as connection:
        connection.execute(
            insert(calendar_changes),
            {
                "calendar": "c",
                "action": "add",
                "day": datetime(2024, 1, 1).date(),
                "name": "n",
                "kind": "holiday",
                "actor": "a",
                "created_at": datetime(2024, 1, 1, 12, 0),
            },
        )
    with read_transaction(database) as connection:
        assert connection.execute(select(registry_counters)).all() == []
    database.dispose()
