"""Creating and upgrading the store's schema with the Alembic migrations shipped in the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from case_workflow.errors import StoreError
from case_workflow.store.database import READ_ONLY

__all__ = ["check_schema", "current_revision", "head_revision", "upgrade"]

_MIGRATIONS = Path(__file__).parent / "migrations"
_VERSION_TABLE = "cw_alembic_version"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (the latest by default); safe to run again."""
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as plain:
        # Read-only, so that on SQLite the check never waits for the write lock.
        connection = plain.execution_options(**{READ_ONLY: True})
        context = MigrationContext.configure(connection, opts={"version_table": _VERSION_TABLE})
        return context.get_current_revision()


def check_schema(engine: Engine) -> None:
    """Raise StoreError unless the database is at the latest schema revision."""
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        found = "no schema" if current is None else f"schema revision {current}"
        raise StoreError(
            f"database {engine.url.render_as_string(hide_password=True)} has {found}, "
            f"expected {head}; run 'case-workflow init' (or Engine.create_schema()) to upgrade it"
        )
