"""GCN Kafka listener (``mm-broker listen gcn``), on :class:`gcn_kafka.Consumer`.

Each message is handed to the handler (which journals and processes it) before its
offset is committed, synchronously, one message at a time: a crash between the two
means the message is delivered again, and the journal counts it as a second receipt
of the same bytes, never as a second notice. While the store is unreachable (the
handler raises :class:`~mm_broker.core.errors.StoreUnavailable`) the listener
retries with backoff, pauses fetching and keeps polling so that it keeps its group
membership. SIGTERM finishes the payload in hand.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaException, TopicPartition

from listeners.daemon import Stopper, log_outcome, with_backoff
from listeners.types import Handler, Outcome
from mm_broker.core.config import Settings, secret
from mm_broker.core.kafka import log_config, security_config

log = logging.getLogger("mm_broker.listen")


def consumer_config(settings: Settings) -> dict[str, Any]:
    """confluent-kafka settings of the GCN consumer (no secrets in the returned dict's
    log representation: the secret is passed separately to gcn_kafka)."""
    g = settings.gcn
    conf: dict[str, Any] = {"group.id": g.group_id, "enable.auto.commit": False,
                            "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                            "enable.partition.eof": False,
                            "max.poll.interval.ms": int(g.max_poll_interval_ms),
                            **log_config(settings)}  # librdkafka's log: Python logging
    if g.bootstrap:
        # A broker of our own (tests, the demo, a mirror): reached with the security
        # settings of [kafka], as every other client of ours.
        conf["bootstrap.servers"] = g.bootstrap
        conf.update(security_config(settings))
    return conf


def make_consumer(settings: Settings) -> Any:
    """A :class:`gcn_kafka.Consumer` on GCN (credentials from the environment) or on
    the configured local broker."""
    import gcn_kafka  # optional at import time: only the GCN listener needs it

    g = settings.gcn
    conf = consumer_config(settings)
    if g.bootstrap:
        return gcn_kafka.Consumer(config=conf)
    return gcn_kafka.Consumer(config=conf, client_id=secret(g.client_id_env),
                              client_secret=secret(g.client_secret_env),
                              domain=g.domain)  # type: ignore[arg-type]  # checked by GCN


def run(settings: Settings, handler: Handler[Outcome], stopper: Stopper,
        topics: list[str] | None = None, max_messages: int | None = None,
        consumer: Any = None) -> int:
    """Consume notices until stopped (or ``max_messages``).

    Parameters
    ----------
    settings : Settings
        ``[gcn]`` (topics, group, broker) and ``[listen]`` (backoff).
    handler : Handler
        Journals and processes one payload; called as
        ``handler("gcn", topic, payload, received_at)``.
    stopper : Stopper
        Ends the loop after the payload in hand.
    topics : list of str, optional
        Topics to subscribe to (default: ``gcn.topics``).
    max_messages : int, optional
        Stop after this many payloads.
    consumer : object, optional
        A ready consumer (tests); by default :func:`make_consumer`.

    Returns
    -------
    int
        The number of payloads handed to the handler and acknowledged.
    """
    topics = topics or list(settings.gcn.topics)
    backoff = (settings.listen.backoff_initial_s,
               settings.listen.backoff_max_s)
    consumer = consumer or make_consumer(settings)
    consumer.subscribe(topics)
    log.info("gcn listener: %d topics", len(topics))
    count = 0
    try:
        while not stopper.stopping and (max_messages is None or count < max_messages):
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                log.debug("gcn listener: %s", msg.error())
                continue
            payload, topic = msg.value() or b"", msg.topic()
            received = datetime.now(UTC)
            where = f"{topic}[{msg.partition()}]@{msg.offset()}"

            def work(payload: bytes = payload, topic: str = topic,
                     received: datetime = received) -> Outcome:
                return handler("gcn", topic, payload, received)

            paused: list[Any] = []

            def keepalive(paused: list[Any] = paused) -> None:
                """While the store is away: pause fetching and keep polling, so the
                group does not evict us (max.poll.interval.ms) during a long outage."""
                if not paused:
                    paused.extend(consumer.assignment())
                    consumer.pause(paused)
                extra = consumer.poll(0)
                if extra is not None and not extra.error():
                    # From a partition assigned meanwhile: rewind it, it comes again.
                    tp = TopicPartition(extra.topic(), extra.partition(), extra.offset())
                    consumer.seek(tp)
                    consumer.pause([tp])
                    paused.append(tp)

            outcome = with_backoff(work, stopper, f"gcn {where}", *backoff, idle=keepalive)
            if paused:
                consumer.resume(paused)
            if outcome is None:
                break  # stopped while the store was away: offset NOT committed
            try:
                consumer.commit(message=msg, asynchronous=False)
            except KafkaException as exc:
                # Stored, but the commit failed (group rebalanced, broker away): the
                # message comes again and is counted as a second receipt of the same
                # bytes, never as a second notice.
                log.warning("gcn %s: stored, offset not committed (%s)", where, exc)
            log_outcome("gcn", where, outcome)
            count += 1
    finally:
        consumer.close()
    return count
