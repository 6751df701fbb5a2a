"""The relational schema of mm_broker (PostgreSQL >= 15), as SQLAlchemy Core tables.

The tables are created and changed only by the Alembic migrations in
``mm_broker/core/db/migrations``; this module describes them for queries.

* ``raw_journal`` — every payload received, before parsing and before the
  transport is acknowledged; identical bytes (same sha256) are one row whose
  ``receipts`` counter grows.
* ``events`` — one row per astrophysical event; points to its active region.
* ``notices`` — every parsed notice version of an event.
* ``regions`` — one region version per notice with a localisation.
* ``region_ranges`` — the region's 90 % area as order-29 nested HEALPix ranges,
  one ``int8range`` per row with a GiST index (the healpix-alchemy model).
* ``region_tiles`` — tiles with their credible level and probability density.
* ``associations`` — what the streaming service published, keyed so nothing doubles.
* ``retractions`` — one retraction record per retracted event, the same outbox.
* ``voevents`` — every VOEvent we broadcast (numbering, citations, the portal).
* ``coincidences`` — the notice × notice coincidences published, the same outbox.
"""

from __future__ import annotations

from sqlalchemy import (
                        BigInteger,
                        Boolean,
                        Column,
                        DateTime,
                        Float,
                        ForeignKey,
                        Index,
                        Integer,
                        LargeBinary,
                        MetaData,
                        String,
                        Table,
                        Text,
                        UniqueConstraint,
                        text,
)
from sqlalchemy.dialects.postgresql import INT8RANGE, JSONB

metadata = MetaData()

raw_journal = Table(
    "raw_journal", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("payload", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
    Column("source", String(32), nullable=False, comment="gcn | vtp | dir | replay"),
    Column("topic", Text, nullable=True, comment="Kafka topic, VTP stream or file path"),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("last_received_at", DateTime(timezone=True), nullable=False),
    Column("receipts", Integer, nullable=False, server_default="1"),
    Column("status", String(16), nullable=False, server_default="received",
           comment="received | stored | superseded | retracted | rejected | stale"),
    Column("reason", Text, nullable=True),
    Column("notice_id", BigInteger, ForeignKey("notices.id", ondelete="SET NULL",
                                               use_alter=True), nullable=True),
)

events = Table(
    "events", metadata,
    Column("event_id", Text, primary_key=True),
    Column("messenger", String(8), nullable=False),
    Column("mission", Text, nullable=False),
    Column("instrument", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("trigger_time", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False, comment="active | retracted"),
    Column("active_region_id", BigInteger, ForeignKey("regions.id", use_alter=True),
           nullable=True),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

notices = Table(
    "notices", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", Text, ForeignKey("events.event_id"), nullable=False),
    Column("journal_id", BigInteger, ForeignKey("raw_journal.id"), nullable=False),
    Column("notice_type", Text, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("issue_time", DateTime(timezone=True), nullable=False),
    Column("trigger_time", DateTime(timezone=True), nullable=False),
    Column("role", String(16), nullable=False),
    Column("retraction", Boolean, nullable=False),
    Column("ivorn", Text, nullable=True),
    Column("significance", JSONB, nullable=False, server_default="{}"),
    Column("extra", JSONB, nullable=False, server_default="{}"),
    Column("status", String(16), nullable=False,
           comment="active | superseded | retracted | stale"),
    UniqueConstraint("journal_id", name="uq_notices_journal"),
    Index("ix_notices_event", "event_id", "issue_time"),
)

regions = Table(
    "regions", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", Text, ForeignKey("events.event_id"), nullable=False),
    Column("notice_id", BigInteger, ForeignKey("notices.id"), nullable=False),
    Column("version", Integer, nullable=False, comment="region version within the event"),
    Column("kind", String(16), nullable=False),
    Column("area_deg2", Float, nullable=False),
    Column("credible_level", Float, nullable=False),
    Column("n_ranges", Integer, nullable=False),
    Column("convention", Text, nullable=False),
    Column("center_ra", Float, nullable=True),
    Column("center_dec", Float, nullable=True),
    Column("radius90_deg", Float, nullable=True),
    Column("sigma_deg", Float, nullable=True),
    Column("radial_model", JSONB, nullable=False, server_default="{}",
           comment="circles: the radial law of levels and densities (skymaps.radial)"),
    Column("distance", JSONB, nullable=False, server_default="{}"),
    Column("status", String(16), nullable=False, comment="active | superseded | withdrawn"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("event_id", "version", name="uq_regions_event_version"),
)

region_ranges = Table(
    "region_ranges", metadata,
    Column("region_id", BigInteger, ForeignKey("regions.id", ondelete="CASCADE"),
           nullable=False),
    Column("rng", INT8RANGE, nullable=False, comment="order-29 nested [lo, hi)"),
    Index("ix_region_ranges_region", "region_id"),
    Index("ix_region_ranges_rng", "rng", postgresql_using="gist"),
)

region_tiles = Table(
    "region_tiles", metadata,
    Column("region_id", BigInteger, ForeignKey("regions.id", ondelete="CASCADE"),
           nullable=False),
    Column("rng", INT8RANGE, nullable=False),
    Column("credible_level", Float, nullable=False),
    Column("density_deg2", Float, nullable=False),
    Index("ix_region_tiles_region", "region_id"),
)

associations = Table(
    "associations", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", Text, nullable=False),
    Column("region_version", Integer, nullable=False),
    Column("alert_id", Text, nullable=False),
    Column("status", String(16), nullable=False, comment="candidate | withdrawn"),
    Column("record", JSONB, nullable=False, comment="the published counterpart record"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=True,
           comment="Kafka confirmed delivery; NULL: inserted, publication not confirmed"),
    UniqueConstraint("event_id", "region_version", "alert_id", "status",
                     name="uq_associations_key"),
    Index("ix_associations_event", "event_id", "region_version"),
    Index("ix_associations_unpublished", "id", postgresql_where=text("published_at IS NULL")),
)


retractions = Table(
    "retractions", metadata,
    Column("event_id", Text, primary_key=True),
    Column("notice_version", BigInteger, nullable=False),
    Column("role", String(16), nullable=False),
    Column("record", JSONB, nullable=False, comment="the published retraction record"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=True,
           comment="Kafka confirmed delivery; NULL: inserted, publication not confirmed"),
)

voevents = Table(
    "voevents", metadata,
    Column("ivorn", Text, primary_key=True),
    Column("event_id", Text, nullable=False),
    Column("region_version", Integer, nullable=True),
    Column("kind", String(16), nullable=False, comment="counterpart | retraction"),
    Column("authored", DateTime(timezone=True), nullable=False),
    Column("xml", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True,
           comment="Comet acknowledged it; NULL: stored, broadcast not confirmed"),
    Index("ix_voevents_event", "event_id", "created_at"),
)

coincidences = Table(
    "coincidences", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", Text, nullable=False),
    Column("region_version", Integer, nullable=False),
    Column("external_event_id", Text, nullable=False),
    Column("external_region_version", Integer, nullable=False),
    Column("status", String(16), nullable=False, comment="candidate | withdrawn"),
    Column("record", JSONB, nullable=False, comment="the published coincidence record"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=True,
           comment="Kafka confirmed delivery; NULL: inserted, publication not confirmed"),
    UniqueConstraint("event_id", "region_version", "external_event_id",
                     "external_region_version", "status", name="uq_coincidences_key"),
    Index("ix_coincidences_events", "event_id", "external_event_id"),
)
