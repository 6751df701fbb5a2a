"""Alembic environment: runs migrations on the connection handed in by mm_broker."""

from alembic import context

from mm_broker.core.db.schema import metadata

config = context.config
target_metadata = metadata

connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through mm_broker.core.db.migrate.upgrade()")
context.configure(connection=connection, target_metadata=target_metadata)
with context.begin_transaction():
    context.run_migrations()
