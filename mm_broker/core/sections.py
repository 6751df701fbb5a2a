"""Typed, frozen sections of the configuration, validated once at load.

The defaults and their documentation live in ``mm_broker/default.toml`` only; the
classes below give each section's keys their types, so that code reads
``settings.coincidence.window_before_s`` (a float, checked) instead of converting
``settings.get("coincidence.window_before_s")`` at each call site. A field is
declared here for every key of the file (a test checks that the two agree), with no
default of its own: one place for a default, one place for a type.

Range checks that the types cannot express (ports, positive durations, levels) are
in each class's ``__post_init__``; a violation is a :class:`ConfigError` naming the
key.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from mm_broker.core.errors import ConfigError

T = TypeVar("T")


def _positive(section: str, **values: float) -> None:
    for key, value in values.items():
        if not value > 0:
            raise ConfigError(f"setting {section}.{key} = {value!r} must be positive")


def _port(section: str, **values: int) -> None:
    for key, value in values.items():
        if not 0 < value < 65536:
            raise ConfigError(f"setting {section}.{key} = {value!r} is not a TCP port")


@dataclass(frozen=True)
class PostgresSettings:
    """``[postgres]``: the store (a local private cluster or a managed server)."""

    host: str
    port: int
    user: str
    database: str
    password_env: str
    url: str
    sslmode: str
    sslrootcert: str
    system_user: str

    def __post_init__(self) -> None:
        _port("postgres", port=self.port)


@dataclass(frozen=True)
class KafkaSettings:
    """``[kafka]``: the cluster of alerts and counterparts, and the local broker."""

    bootstrap: str
    version: str
    port: int
    controller_port: int
    heap: str
    partitions: int
    security_protocol: str
    sasl_mechanism: str
    sasl_username_env: str
    sasl_password_env: str
    client_log_level: str

    def __post_init__(self) -> None:
        _port("kafka", port=self.port, controller_port=self.controller_port)
        if self.client_log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR",
                                                 "CRITICAL"):
            raise ConfigError(f"setting kafka.client_log_level = {self.client_log_level!r} "
                              "is not DEBUG, INFO, WARNING, ERROR or CRITICAL")
        _positive("kafka", partitions=self.partitions)
        if self.security_protocol.lower() not in ("plaintext", "ssl", "sasl_plaintext",
                                                  "sasl_ssl"):
            raise ConfigError(f"setting kafka.security_protocol = {self.security_protocol!r} "
                              "is not plaintext, ssl, sasl_plaintext or sasl_ssl")


@dataclass(frozen=True)
class SparkSettings:
    """``[spark]``: the stream engine."""

    master: str
    version: str
    scala: str
    driver_memory: str
    shuffle_partitions: int
    arrow_batch: int

    def __post_init__(self) -> None:
        _positive("spark", shuffle_partitions=self.shuffle_partitions,
                  arrow_batch=self.arrow_batch)


@dataclass(frozen=True)
class CometSettings:
    """``[comet]``: the local VTP broker."""

    host: str
    receive_port: int
    broadcast_port: int
    whitelist: tuple[str, ...]
    local_ivo: str

    def __post_init__(self) -> None:
        _port("comet", receive_port=self.receive_port, broadcast_port=self.broadcast_port)


@dataclass(frozen=True)
class GcnSettings:
    """``[gcn]``: GCN Kafka, its credentials (by variable name) and topics."""

    domain: str
    client_id_env: str
    client_secret_env: str
    topics: tuple[str, ...]
    group_id: str
    max_poll_interval_ms: int
    bootstrap: str

    def __post_init__(self) -> None:
        _positive("gcn", max_poll_interval_ms=self.max_poll_interval_ms)


@dataclass(frozen=True)
class ListenSettings:
    """``[listen]``: back-off and polling of the notice daemons."""

    backoff_initial_s: float
    backoff_max_s: float
    dir_poll_s: float

    def __post_init__(self) -> None:
        _positive("listen", backoff_initial_s=self.backoff_initial_s,
                  backoff_max_s=self.backoff_max_s, dir_poll_s=self.dir_poll_s)


@dataclass(frozen=True)
class SkymapSettings:
    """``[skymaps]``: limits on received sky maps, and the fetching of linked ones."""

    max_bytes: int
    max_tiles: int
    fetch: bool
    fetch_hosts: tuple[str, ...]
    fetch_http_hosts: tuple[str, ...]
    fetch_timeout_s: float
    fetch_attempts: int
    fetch_backoff_s: float

    def __post_init__(self) -> None:
        _positive("skymaps", max_bytes=self.max_bytes, max_tiles=self.max_tiles,
                  fetch_timeout_s=self.fetch_timeout_s, fetch_attempts=self.fetch_attempts)
        if self.fetch_backoff_s < 0:
            raise ConfigError("setting skymaps.fetch_backoff_s must not be negative")


@dataclass(frozen=True)
class CoincidenceSettings:
    """``[coincidence]``: the time window around each trigger, and newness."""

    window_before_s: float
    window_after_days: float
    newness_before_s: float
    window_after_days_by_messenger: Mapping[str, float]

    def __post_init__(self) -> None:
        if self.window_before_s < 0 or self.newness_before_s < 0:
            raise ConfigError("settings coincidence.window_before_s and newness_before_s "
                              "must not be negative")
        _positive("coincidence", window_after_days=self.window_after_days,
                  **{f"window_after_days_by_messenger.{k}": float(v)
                     for k, v in self.window_after_days_by_messenger.items()})

    def after_days(self, messenger: str) -> float:
        """Length of the window after t0 for ``messenger``, days."""
        return float(self.window_after_days_by_messenger.get(messenger,
                                                              self.window_after_days))

    def window(self, messenger: str, t0: datetime) -> tuple[datetime, datetime]:
        """The active window ``[t0 - window_before_s, t0 + after_days(messenger)]``."""
        return (t0 - timedelta(seconds=self.window_before_s),
                t0 + timedelta(days=self.after_days(messenger)))


@dataclass(frozen=True)
class NoticeCoincidenceSettings:
    """``[coincidence_notices]``: notice × notice coincidences, pairs, windows, rates."""

    enabled: bool
    pairs: tuple[str, ...]
    sky_samples: int
    window_lo_s: Mapping[str, float]
    window_hi_s: Mapping[str, float]
    method: Mapping[str, str]
    rate_per_yr: Mapping[str, float]
    far_threshold_hz: Mapping[str, float]

    def __post_init__(self) -> None:
        where = "coincidence_notices"
        _positive(where, sky_samples=self.sky_samples,
                  **{f"rate_per_yr.{k}": float(v) for k, v in self.rate_per_yr.items()},
                  **{f"far_threshold_hz.{k}": float(v)
                     for k, v in self.far_threshold_hz.items()})
        for pair in self.pairs:
            ref, sep, other = pair.partition("-")
            if not sep or not ref or not other:
                raise ConfigError(f"setting {where}.pairs: {pair!r} is not 'REFERENCE-OTHER'")
            for table in ("window_lo_s", "window_hi_s", "method"):
                if pair not in getattr(self, table):
                    raise ConfigError(f"setting {where}.{table} has no entry for pair {pair!r}")
            if not self.window_lo_s[pair] < self.window_hi_s[pair]:
                raise ConfigError(f"settings {where}.window_lo_s/window_hi_s of {pair!r}: "
                                  "the window must start before it ends")
            if self.method[pair] not in ("untargeted", "targeted"):
                raise ConfigError(f"setting {where}.method.{pair} = {self.method[pair]!r} "
                                  "is not 'untargeted' or 'targeted'")
            for stream in (ref, other):
                if stream not in self.rate_per_yr:
                    raise ConfigError(f"setting {where}.rate_per_yr has no entry for stream "
                                      f"{stream!r} (pair {pair!r})")
            if self.method[pair] == "targeted":
                for stream in (ref, other):
                    if stream not in self.far_threshold_hz:
                        raise ConfigError(f"setting {where}.far_threshold_hz has no entry "
                                          f"for stream {stream!r} (targeted pair {pair!r})")


@dataclass(frozen=True)
class PublishSettings:
    """``[publish]``: outbound topics and VOEvents."""

    topic_prefix: str
    partitions: int
    replication_factor: int
    retention_ms: int
    delivery_timeout_ms: int
    counterpart_schema_version: int
    retraction_schema_version: int
    author_ivorn: str
    reference_url: str
    voevent_max_candidates: int
    vtp_timeout_s: float

    def __post_init__(self) -> None:
        _positive("publish", partitions=self.partitions,
                  replication_factor=self.replication_factor, retention_ms=self.retention_ms,
                  delivery_timeout_ms=self.delivery_timeout_ms,
                  voevent_max_candidates=self.voevent_max_candidates,
                  vtp_timeout_s=self.vtp_timeout_s)


@dataclass(frozen=True)
class AlertSettings:
    """``[alerts]``: the alert streams, the archive and the streaming queries."""

    topics: tuple[str, ...]
    archive_uri: str
    checkpoint_uri: str
    max_offsets_per_trigger: int
    memory_horizon_s: float
    trigger: str
    region_poll_s: float
    source_retries: int
    restart_initial_s: float
    restart_max_s: float
    catalogue_dir: str

    def __post_init__(self) -> None:
        _positive("alerts", max_offsets_per_trigger=self.max_offsets_per_trigger,
                  memory_horizon_s=self.memory_horizon_s, region_poll_s=self.region_poll_s,
                  restart_initial_s=self.restart_initial_s, restart_max_s=self.restart_max_s)


@dataclass(frozen=True)
class ServeSettings:
    """``[serve]``: the portal and REST API (``mm-broker serve``)."""

    host: str
    port: int
    token_env: str
    cors_origins: tuple[str, ...]
    rate_limit_per_min: int
    rate_limit_burst: int
    max_request_bytes: int
    page_size: int
    max_page_size: int
    live_poll_s: float
    live_max_s: float
    health_timeout_s: float
    run_checkpoint: str

    def __post_init__(self) -> None:
        _port("serve", port=self.port)
        _positive("serve", rate_limit_burst=self.rate_limit_burst,
                  max_request_bytes=self.max_request_bytes, page_size=self.page_size,
                  max_page_size=self.max_page_size, live_poll_s=self.live_poll_s,
                  live_max_s=self.live_max_s, health_timeout_s=self.health_timeout_s)
        if self.rate_limit_per_min < 0:
            raise ConfigError("setting serve.rate_limit_per_min must not be negative")
        if self.page_size > self.max_page_size:
            raise ConfigError("setting serve.page_size must not exceed serve.max_page_size")


#: Section name → its class (the order of ``default.toml``).
SECTIONS: dict[str, type] = {
    "postgres": PostgresSettings, "kafka": KafkaSettings, "spark": SparkSettings,
    "comet": CometSettings, "gcn": GcnSettings, "listen": ListenSettings,
    "skymaps": SkymapSettings, "coincidence": CoincidenceSettings,
    "coincidence_notices": NoticeCoincidenceSettings,
    "publish": PublishSettings, "alerts": AlertSettings, "serve": ServeSettings,
}


def _convert(where: str, hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"setting {where} = {value!r} should be a number")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"setting {where} = {value!r} should be an integer")
        return value
    if hint in (str, bool):
        if not isinstance(value, hint):
            raise ConfigError(f"setting {where} = {value!r} should be {hint.__name__}")
        return value
    if origin is tuple:
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        if not isinstance(value, list | tuple):
            raise ConfigError(f"setting {where} = {value!r} should be a list")
        return tuple(_convert(f"{where}[{i}]", item, v) for i, v in enumerate(value))
    if origin is Mapping:
        _, item = typing.get_args(hint)
        if not isinstance(value, Mapping):
            raise ConfigError(f"setting {where} = {value!r} should be a table")
        return {str(k): _convert(f"{where}.{k}", item, v) for k, v in value.items()}
    raise ConfigError(f"setting {where}: no conversion for {hint!r}")  # pragma: no cover


def build(cls: type[T], name: str, table: Mapping[str, Any]) -> T:
    """The typed section ``name`` from its table of the merged configuration.

    Raises
    ------
    ConfigError
        A key is missing, or a value has the wrong type or is out of range.
    """
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in table:
            raise ConfigError(f"setting {name}.{f.name} is missing")
        values[f.name] = _convert(f"{name}.{f.name}", hints[f.name], table[f.name])
    return cls(**values)
