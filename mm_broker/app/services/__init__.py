"""Local services: PostgreSQL, Kafka, Comet, and Spark's connector jars.

``mm-broker services up`` starts what is configured, idempotently, waits until each
service answers, brings the database schema to the newest migration and prints
where each listens. ``down`` stops only the processes whose pid files are in our
state directory. ``clean`` also deletes what would outlive the state directory (a
PostgreSQL cluster kept outside it, see :mod:`mm_broker.app.services.pg_layout`).
Every socket is bound to 127.0.0.1.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from fink_core import session as spark
from mm_broker.app.services.comet import Comet
from mm_broker.app.services.kafka import Kafka
from mm_broker.app.services.postgres import Postgres
from mm_broker.core.config import Settings
from mm_broker.core.db import migrate


class Service(Protocol):
    """What the manager needs of a local service."""

    name: str

    def start(self) -> str: ...
    def stop(self) -> bool: ...
    def status(self) -> str: ...


@dataclass(frozen=True)
class Started:
    """Outcome of starting one service."""

    name: str
    address: str
    seconds: float


def all_services(settings: Settings) -> list[Service]:
    """The local services in start order."""
    return [Postgres(settings), Kafka(settings), Comet(settings)]


def up(settings: Settings) -> list[Started]:
    """Start every service (idempotent), migrate the schema, fetch Spark's jars."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    out: list[Started] = []
    for svc in all_services(settings):
        t0 = time.monotonic()
        addr = svc.start()
        out.append(Started(svc.name, addr, time.monotonic() - t0))
        if svc.name == "postgres":
            t1 = time.monotonic()
            rev = migrate.upgrade(settings)
            out.append(Started("schema", f"alembic revision {rev}", time.monotonic() - t1))
    t0 = time.monotonic()
    jars = spark.connector_jars(settings)
    out.append(Started("spark-jars", f"{len(jars)} connector jars in {settings.cache_dir}",
                       time.monotonic() - t0))
    return out


def down(settings: Settings) -> list[tuple[str, bool]]:
    """Stop what we started, in reverse order; return (name, was_running)."""
    return [(svc.name, svc.stop()) for svc in reversed(all_services(settings))]


def clean(settings: Settings) -> list[tuple[str, bool]]:
    """Stop what we started and delete what lives outside the state directory.

    Returns
    -------
    list of (str, bool)
        ``(name, was_running)`` per service as :func:`down`, then
        ``("postgres-cluster", deleted)``: whether a cluster outside the state
        directory was deleted.
    """
    stopped = down(settings)
    return [*stopped, ("postgres-cluster", Postgres(settings).clean())]


def status(settings: Settings) -> list[tuple[str, str]]:
    """(name, status) of every service."""
    return [(svc.name, svc.status()) for svc in all_services(settings)]
