"""The one builder of Kafka client settings: bootstrap servers, TLS and SASL.

Every Kafka client of mm_broker takes its connection settings from here, so that a
secured cluster is configured once (``[kafka]`` of ``default.toml``) and reached
the same way by the GCN listener pointed at a local broker, Spark's Kafka source
(``mm-broker run`` and ``mm-broker alerts archive``), the publishers and the
consumer.

Credentials are read from the environment variables named by
``kafka.sasl_username_env`` / ``kafka.sasl_password_env``: the returned mappings hold
them, so they must never be logged.
"""

from __future__ import annotations

from typing import Any

from mm_broker.core.config import Settings, secret
from mm_broker.core.errors import ConfigError

#: JAAS login modules of the SASL mechanisms Spark's Kafka source accepts.
_JAAS_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


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
        username and password.

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
    k = settings.tree["kafka"]
    conf: dict[str, Any] = {"bootstrap.servers": str(k["bootstrap"]),
                            "security.protocol": str(k["security_protocol"])}
    conf.update(security_config(settings))
    return conf


def security_config(settings: Settings) -> dict[str, Any]:
    """The security part alone (``security.protocol`` and SASL), for a client that
    talks to the configured cluster through other bootstrap servers."""
    k = settings.tree["kafka"]
    conf: dict[str, Any] = {"security.protocol": str(k["security_protocol"])}
    if k["sasl_mechanism"]:
        user = secret(k["sasl_username_env"]) if k["sasl_username_env"] else None
        password = secret(k["sasl_password_env"]) if k["sasl_password_env"] else None
        if user is None or password is None:
            raise ConfigError("kafka.sasl_mechanism is set but the SASL username or password "
                              "environment variable is empty")
        conf.update({"sasl.mechanism": str(k["sasl_mechanism"]), "sasl.username": user,
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
            "fetchOffset.numRetries": str(settings.get("alerts.source_retries")),
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
