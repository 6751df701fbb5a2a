"""Bring the database schema to the newest Alembic revision.

Alembic is driven from Python (no ``alembic.ini`` URL, no shell): the connection is
made from the mm_broker configuration and handed to ``migrations/env.py``.
"""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine

from mm_broker.core.config import Settings


def _alembic_config() -> Config:
    ini = resources.files("mm_broker.core.db").joinpath("alembic.ini")
    cfg = Config(str(ini))
    cfg.set_main_option("script_location", str(resources.files("mm_broker.core.db") / "migrations"))
    return cfg


def engine_for(settings: Settings) -> Engine:
    """SQLAlchemy engine on the configured database (pool pre-ping on)."""
    return create_engine(settings.database_url(), pool_pre_ping=True, future=True)


def upgrade(settings: Settings, revision: str = "head") -> str:
    """Upgrade the schema to ``revision``; return the revision now current."""
    cfg = _alembic_config()
    engine = engine_for(settings)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        return current(engine)
    finally:
        engine.dispose()


def current(engine: Engine) -> str:
    """Current schema revision of the database behind ``engine``."""
    with engine.connect() as conn:
        rev = MigrationContext.configure(conn).get_current_revision()
    return rev or "none"


def head() -> str:
    """Newest revision shipped with this version of mm_broker."""
    script = ScriptDirectory.from_config(_alembic_config())
    return str(script.get_current_head())
