"""Typed settings of the publishers, read once from mm_broker's configuration.

Defaults and their documentation live in the ``[publish]`` section of
``mm_broker/default.toml`` (plus ``[kafka]`` for the bootstrap servers and security,
``[comet]`` for the local broker); this module only collects and checks them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from mm_broker import __version__
from mm_broker.core.config import ConfigError, Settings
from mm_broker.core.kafka import client_config as kafka_client_config

_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]+$")
_IVORN_RE = re.compile(r"^ivo://[A-Za-z0-9][\w\-.~*'()]{2,}(/[\w\-.~*'()/]*)?$")


@dataclass(frozen=True)
class PublishConfig:
    """Everything the publishers need to know about the deployment.

    Attributes
    ----------
    kafka : dict
        confluent-kafka connection settings (:func:`kafka_client_config`).
    topic_prefix : str
        First part of every topic name (``"mm"``).
    partitions, replication_factor, retention_ms : int
        Properties of the topics we create.
    delivery_timeout_ms : int
        How long one record may wait for delivery (librdkafka ``message.timeout.ms``).
    counterpart_schema_version, retraction_schema_version : int
        Versions of the schema files written.
    author_ivorn : str
        Our VOEvent author IVORN; our VOEvents are ``<author_ivorn>#<local id>``.
    reference_url : str
        URI cited in the How section of our VOEvents.
    voevent_max_candidates : int
        Candidates listed in one VOEvent.
    comet_host : str
        Host of the Comet broker we submit VOEvents to.
    comet_port : int
        Its receive (submission) port.
    vtp_timeout_s : float
        Seconds to wait for Comet's ack or nak.
    provenance : dict
        ``mm_broker_version`` and ``config_hash`` stamped on records lacking them.
    """

    kafka: dict[str, Any] = field(repr=False)
    topic_prefix: str = "mm"
    partitions: int = 2
    replication_factor: int = 1
    retention_ms: int = 7 * 24 * 3600 * 1000
    delivery_timeout_ms: int = 300_000
    counterpart_schema_version: int = 2
    retraction_schema_version: int = 1
    author_ivorn: str = "ivo://mm-broker.local/counterparts"
    reference_url: str = "ivo://mm-broker.local/counterparts"
    voevent_max_candidates: int = 20
    comet_host: str = "127.0.0.1"
    comet_port: int = 58098
    vtp_timeout_s: float = 20.0
    provenance: dict[str, str] = field(default_factory=lambda: {"mm_broker_version":
                                                                __version__})

    def __post_init__(self) -> None:
        if not _TOPIC_RE.match(self.topic_prefix):
            raise ConfigError(f"publish.topic_prefix {self.topic_prefix!r}: use letters, "
                              "digits, '.', '_' and '-' only")
        for name in ("partitions", "replication_factor", "retention_ms", "delivery_timeout_ms",
                     "voevent_max_candidates", "counterpart_schema_version",
                     "retraction_schema_version"):
            if getattr(self, name) < 1:
                raise ConfigError(f"publish.{name} must be at least 1")
        if not _IVORN_RE.match(self.author_ivorn):
            raise ConfigError(f"publish.author_ivorn {self.author_ivorn!r} is not an IVORN "
                              "of the form ivo://authority/resource (no '#')")
        if self.vtp_timeout_s <= 0:
            raise ConfigError("publish.vtp_timeout_s must be positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> PublishConfig:
        """Collect ``[publish]``, ``[kafka]`` and ``[comet]`` from ``settings``."""
        p = settings.publish
        c = settings.comet
        return cls(
            kafka=kafka_client_config(settings),
            topic_prefix=str(p.topic_prefix),
            partitions=int(p.partitions),
            replication_factor=int(p.replication_factor),
            retention_ms=int(p.retention_ms),
            delivery_timeout_ms=int(p.delivery_timeout_ms),
            counterpart_schema_version=int(p.counterpart_schema_version),
            retraction_schema_version=int(p.retraction_schema_version),
            author_ivorn=str(p.author_ivorn),
            reference_url=str(p.reference_url or p.author_ivorn),
            voevent_max_candidates=int(p.voevent_max_candidates),
            comet_host=str(c.host),
            comet_port=int(c.receive_port),
            vtp_timeout_s=float(p.vtp_timeout_s),
            provenance={"mm_broker_version": __version__, "config_hash": settings.hash()},
        )

    def with_prefix(self, topic_prefix: str) -> PublishConfig:
        """The same configuration writing under another topic prefix (tests, benchmarks)."""
        return replace(self, topic_prefix=topic_prefix)
