"""Migration 0002 creates exactly the exchange tables that exchange_tables.py declares.

The upgrade runs in a fresh process that never imports the exchange tables, so revision 0001
cannot create them and 0002's own operations are what is checked.
"""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import create_engine, inspect

from case_workflow.store.exchange_tables import (
    exchange_inbox,
    exchange_links,
    exchange_outbox,
    exchange_rejected,
)

TABLES = (exchange_links, exchange_outbox, exchange_inbox, exchange_rejected)

MIGRATE = """
import sys
from alembic import command
from case_workflow.store.database import connect
from case_workflow.store.schema import _config
engine = connect(sys.argv[1])
config = _config()
with engine.begin() as connection:
    config.attributes["connection"] = connection
    getattr(command, sys.argv[2])(config, sys.argv[3])
assert "case_workflow.store.exchange_tables" not in sys.modules
"""


def migrate(url: str, direction: str, revision: str) -> None:
    subprocess.run([sys.executable, "-c", MIGRATE, url, direction, revision], check=True)


def test_upgrade_creates_declared_tables(database_url: str) -> None:
    migrate(database_url, "upgrade", "head")
    inspector = inspect(create_engine(database_url))
    for table in TABLES:
        columns = {column["name"]: column for column in inspector.get_columns(table.name)}
        assert set(columns) == set(table.columns.keys()), table.name
        for column in table.columns:
            assert columns[column.name]["nullable"] == column.nullable, (table.name, column.name)
        uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table.name)}
        declared = {
            tuple(c.name for c in constraint.columns)
            for constraint in table.constraints
            if constraint.__class__.__name__ == "UniqueConstraint"
        }
        assert uniques == declared, table.name
        indexes = {index["name"] for index in inspector.get_indexes(table.name)}
        assert {index.name for index in table.indexes} <= indexes, table.name


def test_downgrade_drops_exchange_tables(database_url: str) -> None:
    migrate(database_url, "upgrade", "head")
    migrate(database_url, "downgrade", "0001")
    names = set(inspect(create_engine(database_url)).get_table_names())
    assert not {table.name for table in TABLES} & names
    assert "cw_dossiers" in names
