"""The one builder of Kafka client settings: bootstrap servers, TLS and SASL.

Every Kafka client of mm_broker takes its connection settings from here, so that a
secured cluster is configured once (``[kafka]`` of ``default.toml``) and reached
the same way by the GCN listener pointed at a local broker, Spark's Kafka source
(``mm-broker run`` and ``mm-broker alerts archive``), the publishers and the
consumer.

Credentials are read from the environment variables named by
``kafka.sasl_username_env`` / ``kafka.sasl_password_env``: the returned mappings hold
them, so they must never be logged.

librdkafka's own log lines (``%3|…|FAIL|…`` on stderr by default) are routed through
Python logging instead (:func:`log_config`): they become records of the logger
:data:`LIBRDKAFKA_LOGGER`, at the level librdkafka gave them, emitted on the thread
that polls the client, kept from ``kafka.client_log_level`` up (every line with debug
logging, as ``mm-broker -v`` sets it), a repeat of the same line within a minute
counted rather than printed.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from mm_broker.core.config import Settings, secret
from mm_broker.core.errors import ConfigError

#: JAAS login modules of the SASL mechanisms Spark's Kafka source accepts.
_JAAS_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}

#: Name of the logger that receives librdkafka's own log lines.
LIBRDKAFKA_LOGGER = "mm_broker.kafka.librdkafka"

#: Python logging level → librdkafka's ``log_level`` (syslog severities).
_SYSLOG = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
           logging.CRITICAL: 2}

#: Levels ``kafka.client_log_level`` may name.
LEVELS = tuple(logging.getLevelName(level) for level in _SYSLOG)


class RepeatFilter(logging.Filter):
    """Let a line through once per ``interval_s``; count the repeats in between.

    librdkafka logs the same line again at every reconnection attempt (every few
    hundred milliseconds to a broker that is away). The first one passes; identical
    ones within ``interval_s`` are dropped, and the next one after it passes with
    the number dropped appended.

    Parameters
    ----------
    interval_s : float
        Seconds during which a line is not repeated.
    """

    def __init__(self, interval_s: float = 60.0) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._seen: dict[tuple[int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether ``record`` is printed (a repeat within the interval is not)."""
        key = (record.levelno, record.getMessage())
        now = time.monotonic()
        with self._lock:
            last, dropped = self._seen.get(key, (float("-inf"), 0))
            if now - last < self.interval_s:
                self._seen[key] = (last, dropped + 1)
                return False
            if len(self._seen) > 1000:  # bounded: forget old lines
                self._seen.clear()
            self._seen[key] = (now, 0)
        if dropped:
            record.msg = f"{record.getMessage()} ({dropped} identical lines suppressed)"
            record.args = ()
        return True


_librdkafka_log = logging.getLogger(LIBRDKAFKA_LOGGER)
_librdkafka_log.addFilter(RepeatFilter())


def log_config(settings: Settings) -> dict[str, Any]:
    """confluent-kafka settings that route librdkafka's log through Python logging.

    Parameters
    ----------
    settings : Settings
        Effective configuration (``kafka.client_log_level``).

    Returns
    -------
    dict
        ``logger`` (the logger :data:`LIBRDKAFKA_LOGGER`), ``log_level`` (librdkafka's
        threshold: ``kafka.client_log_level``, or every line when the logger is
        enabled for DEBUG, as ``mm-broker -v`` makes it) and ``log.connection.close``
        off (an idle connection the broker closes is reopened when needed; librdkafka
        would log each one as an error).

    Raises
    ------
    ConfigError
        ``kafka.client_log_level`` is not a level name.

    Examples
    --------
    >>> from mm_broker.core.config import load
    >>> conf = log_config(load(environ={"MM_KAFKA__CLIENT_LOG_LEVEL": "ERROR"}))
    >>> conf["logger"].name, conf["log_level"]
    ('mm_broker.kafka.librdkafka', 3)
    """
    name = settings.kafka.client_log_level.upper()
    if name not in LEVELS:
        raise ConfigError(f"kafka.client_log_level {name!r} is not one of {list(LEVELS)}")
    level = logging.DEBUG if _librdkafka_log.isEnabledFor(logging.DEBUG) \
        else logging.getLevelName(name)
    return {"logger": _librdkafka_log, "log_level": _SYSLOG[level],
            "log.connection.close": False}


def client_config(settings: Settings) -> dict[str, Any]:
    """confluent-kafka connection settings: bootstrap, security protocol, SASL.

    Parameters
    ----------
    settings : Settings
        Effective configuration (``[kafka]``).

    Returns
    -------
    dict
        ``bootstrap.servers``, ``security.protocol`` and, with SASL, the mechanism,
        username and password; librdkafka's log through Python logging
        (:func:`log_config`).

    Raises
    ------
    ConfigError
        A SASL mechanism is set but its credentials are missing.

    Examples
    --------
    >>> from mm_broker.core.config import load
    >>> client_config(load(environ={}))["security.protocol"]
    'plaintext'
    """
    k = settings.kafka
    conf: dict[str, Any] = {"bootstrap.servers": str(k.bootstrap),
                            "security.protocol": str(k.security_protocol)}
    conf.update(security_config(settings))
    conf.update(log_config(settings))
    return conf


def security_config(settings: Settings) -> dict[str, Any]:
    """The security part alone (``security.protocol`` and SASL), for a client that
    talks to the configured cluster through other bootstrap servers (add
    :func:`log_config` to it)."""
    k = settings.kafka
    conf: dict[str, Any] = {"security.protocol": str(k.security_protocol)}
    if k.sasl_mechanism:
        user = secret(k.sasl_username_env) if k.sasl_username_env else None
        password = secret(k.sasl_password_env) if k.sasl_password_env else None
        if user is None or password is None:
            raise ConfigError("kafka.sasl_mechanism is set but the SASL username or password "
                              "environment variable is empty")
        conf.update({"sasl.mechanism": str(k.sasl_mechanism), "sasl.username": user,
                     "sasl.password": password})
    return conf


def spark_source_options(settings: Settings) -> dict[str, str]:
    """Options of Spark's Kafka source for the configured cluster.

    Security comes from :func:`client_config`; SASL credentials are written into the
    JAAS configuration Spark expects. Spark redacts option values that mention a
    password in its plans and logs; this dict itself holds the secret and must never
    be logged. The broker's offset fetches are retried (``alerts.source_retries``,
    2 s apart), so a broker restart does not fail the query.

    Raises
    ------
    ConfigError
        The SASL mechanism is not one Spark's Kafka source knows.
    """
    conf = client_config(settings)
    opts = {"kafka.bootstrap.servers": conf["bootstrap.servers"],
            "kafka.security.protocol": conf["security.protocol"].upper(),
            "fetchOffset.numRetries": settings.alerts.source_retries,
            "fetchOffset.retryIntervalMs": "2000"}
    mechanism = conf.get("sasl.mechanism")
    if mechanism:
        module = _JAAS_MODULES.get(str(mechanism).upper())
        if module is None:
            raise ConfigError(f"kafka.sasl_mechanism {mechanism!r} is not one of "
                              f"{sorted(_JAAS_MODULES)} for Spark's Kafka source")
        user = str(conf["sasl.username"]).replace("\\", "\\\\").replace('"', '\\"')
        password = str(conf["sasl.password"]).replace("\\", "\\\\").replace('"', '\\"')
        opts["kafka.sasl.mechanism"] = str(mechanism).upper()
        opts["kafka.sasl.jaas.config"] = (f'{module} required username="{user}" '
                                          f'password="{password}";')
    return opts
