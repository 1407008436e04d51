"""Alembic environment: runs on the connection that case_workflow.store.schema passes in."""

from __future__ import annotations

from alembic import context

from case_workflow.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    version_table="cw_alembic_version",
)
with context.begin_transaction():
    context.run_migrations()
