"""librdkafka's own log goes through Python logging (issue 11, defect 5).

Every client made from :func:`mm_broker.core.kafka.client_config` hands librdkafka's
lines to the logger ``mm_broker.kafka.librdkafka`` at the level the user chose
(``kafka.client_log_level``; all of them with debug logging), and nothing reaches the
process's stderr. The contrast test shows what the same client writes to stderr
without the routing, so that the first test cannot pass by accident.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer

from mm_broker.core.config import ConfigError, load
from mm_broker.core.kafka import LIBRDKAFKA_LOGGER, RepeatFilter, client_config, log_config
from publishers.config import PublishConfig


@pytest.fixture
def unreachable() -> Iterator[str]:
    """``127.0.0.1:PORT`` of a port nobody listens on (bound, never listening)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{s.getsockname()[1]}"


def _produce_and_poll(conf: dict[str, object], seconds: float = 2.0) -> None:
    producer = Producer({**conf, "message.timeout.ms": 1000})
    producer.produce("mm.test.logging", b"x")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        producer.poll(0.2)
    producer.flush(0.5)


def test_a_client_of_the_builder_logs_through_python_logging_not_stderr(
        unreachable: str, capfd: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    conf = {**client_config(load(environ={})), "bootstrap.servers": unreachable}
    with caplog.at_level(logging.INFO, logger=LIBRDKAFKA_LOGGER):
        _produce_and_poll(conf)
    ours = [r for r in caplog.records if r.name == LIBRDKAFKA_LOGGER]
    assert ours, "librdkafka said nothing about an unreachable broker"
    assert all(r.levelno >= logging.WARNING for r in ours)
    assert any(r.levelno >= logging.ERROR and unreachable in r.getMessage()
               and "Connection refused" in r.getMessage() for r in ours)
    # The reconnection attempts repeat the same line: it is printed once.
    assert len({r.getMessage() for r in ours}) == len(ours)
    err = capfd.readouterr().err
    assert "%3|" not in err and "%4|" not in err and "FAIL" not in err, err


def test_without_the_routing_librdkafka_writes_to_stderr(
        unreachable: str, capfd: pytest.CaptureFixture[str]) -> None:
    _produce_and_poll({"bootstrap.servers": unreachable})
    assert "%3|" in capfd.readouterr().err


def test_publishers_clients_take_their_settings_from_the_builder() -> None:
    kafka = PublishConfig.from_settings(load(environ={})).kafka
    assert kafka["logger"].name == LIBRDKAFKA_LOGGER


@pytest.mark.parametrize(("level", "syslog"), [("DEBUG", 7), ("INFO", 6), ("WARNING", 4),
                                               ("error", 3), ("CRITICAL", 2)])
def test_the_level_is_the_users_choice(level: str, syslog: int) -> None:
    conf = log_config(load(environ={"MM_KAFKA__CLIENT_LOG_LEVEL": level}))
    assert conf["log_level"] == syslog
    assert conf["logger"] is logging.getLogger(LIBRDKAFKA_LOGGER)


def test_the_default_is_warning_and_debug_logging_shows_every_line() -> None:
    settings = load(environ={})
    assert settings.get("kafka.client_log_level") == "WARNING"
    assert log_config(settings)["log_level"] == 4
    logger = logging.getLogger(LIBRDKAFKA_LOGGER)
    logger.setLevel(logging.DEBUG)  # what `mm-broker -v` does through the root logger
    try:
        assert log_config(settings)["log_level"] == 7
    finally:
        logger.setLevel(logging.NOTSET)


def test_an_unknown_level_is_refused_at_load() -> None:
    with pytest.raises(ConfigError, match=r"kafka\.client_log_level"):
        load(environ={"MM_KAFKA__CLIENT_LOG_LEVEL": "LOUD"})


def test_repeats_are_counted_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    f = RepeatFilter(interval_s=60)

    def rec(msg: str) -> logging.LogRecord:
        return logging.LogRecord(LIBRDKAFKA_LOGGER, logging.ERROR, __file__, 1,
                                 "%s [%s] %s", ("FAIL", "rdkafka#producer-1", msg), None)

    assert f.filter(rec("refused"))
    assert not f.filter(rec("refused")) and not f.filter(rec("refused"))
    assert f.filter(rec("another line"))
    now[0] += 61
    again = rec("refused")
    assert f.filter(again)
    assert again.getMessage() == ("FAIL [rdkafka#producer-1] refused "
                                  "(2 identical lines suppressed)")
    assert not f.filter(rec("refused"))
