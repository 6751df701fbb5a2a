"""Database layer: schema (SQLAlchemy Core), Alembic migrations, engine helpers."""
