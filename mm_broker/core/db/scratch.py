"""A throwaway database at the newest migration, in the same PostgreSQL server.

Used by benchmarks and tests so that what they store never mixes with the
broker's own database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mm_broker.core import config
from mm_broker.core.db import migrate


@contextmanager
def temporary_database(settings: config.Settings, prefix: str = "mm_tmp",
                       ) -> Iterator[config.Settings]:
    """Create a database, migrate it to head, yield settings pointing at it, drop it.

    The name is ``<prefix>_<random>``; only letters, digits and ``_`` are used, so it
    can be quoted safely in the DDL (identifiers cannot be bound parameters).
    """
    if not prefix.replace("_", "").isalnum():
        raise ValueError(f"bad database prefix {prefix!r}")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    # pre-ping: the server may have restarted meanwhile (fault tests restart it).
    admin = create_engine(make_url(settings.database_url()).set(database="postgres"),
                          isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        scratch = settings.with_values({"postgres.database": name})
        migrate.upgrade(scratch)
        yield scratch
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
