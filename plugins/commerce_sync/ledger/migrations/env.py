"""Alembic environment: run programmatically by commerce_sync.ledger.db.migrate()."""

from alembic import context

from commerce_sync.ledger.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
    version_table="ledger_alembic_version",
)
with context.begin_transaction():
    context.run_migrations()
