"""``mm-broker bench publish``: records/s to the real Kafka, VOEvents/s through Comet.

Figures (units in the key names):

* ``kafka.records_per_s`` — validate, Avro-encode, produce and wait until every
  record is acknowledged (``acks=all``, idempotent producer) by the configured
  Kafka, for ``n_records`` counterpart records;
* ``kafka.encode_only_records_per_s`` — validation and encoding alone;
* ``comet.voevents_per_s`` — author, validate as VOEvent 2.0, submit over VTP and
  wait for the ack, one at a time, for ``n_voevents`` VOEvents; and the median and
  95th percentile of one submission round trip.

Bench topics live under a unique ``bench-<id>.mm`` prefix and are deleted at the end;
bench events are ``role = "test"`` and carry unique ids (Comet remembers bytes).

The Comet figure depends on the size of Comet's event database: Comet opens a ``dbm``
file for every submission, and a Python built without ``_gdbm``/``_dbm`` falls back to
``dbm.dumb``, whose whole index is read and rewritten each time, so the rate falls as
the events of the last 30 days accumulate (measured: 275/s on an empty database,
46/s after 800 events).
"""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.common import machine
from mm_broker.core import config as configmod
from publishers import records as rec
from publishers import schema as sch
from publishers.config import PublishConfig
from publishers.kafka import CounterpartProducer, delete_topics
from publishers.voevent import counterpart_voevent
from publishers.vtp import VTPClient


def synthetic_records(n: int, event_id: str, *, per_event: int = 50) -> list[dict[str, Any]]:
    """``n`` valid counterpart records of test GW events (``per_event`` each).

    Deterministic for given arguments: positions, times and probabilities follow
    the record index.
    """
    t0 = datetime(2026, 11, 26, 3, 0, 0, tzinfo=UTC)
    out = []
    for i in range(n):
        k = i % per_event
        t = t0 + timedelta(hours=1 + 0.37 * i)
        out.append({
            "event_id": f"{event_id}-{i // per_event}", "messenger": "GW", "mission": "LVK",
            "instrument": "bayestar", "notice_version": 2, "region_version": 1,
            "role": "test", "status": "candidate",
            "trigger_time": t0.isoformat().replace("+00:00", "Z"), "survey": "ZTF",
            "object_id": f"ZTF26bench{i:06d}", "alert_id": str(2_600_000_000_000 + i),
            "alert_time": t.isoformat().replace("+00:00", "Z"),
            "ra": (13.7 * i) % 360.0, "dec": -30.0 + (7.3 * i) % 60.0,
            "delta_t_s": (t - t0).total_seconds(), "separation_deg": None,
            "separation_ratio": None, "credible_level": round(0.05 + 0.85 * k / per_event, 4),
            "prob_density_deg2": 1e-3 / (1 + k), "p_chance": min(1.0, 0.01 * (1 + k)),
            "rank": k + 1, "rate_per_deg2_day": 0.05, "searched_area_deg2": 250.0,
            "elapsed_days": (t - t0).total_seconds() / 86400 + 600 / 86400,
            "mag": 19.5 + 0.01 * k, "mag_err": 0.08, "band": "r",
            "significance": {"far_hz": 1e-9, "classification": "BNS"},
        })
    return out


def _kafka(config: PublishConfig, n_records: int) -> dict[str, Any]:
    records = synthetic_records(n_records, f"bench:{uuid.uuid4().hex[:8]}")
    schema = sch.load("counterpart", config.counterpart_schema_version)
    t0 = time.perf_counter()
    for r in records:
        schema.encode(rec.validate(r, schema))
    encode_s = time.perf_counter() - t0
    producer = CounterpartProducer(config)
    try:
        producer.ensure_topics()
        producer.publish(synthetic_records(100, "bench:warm"), wait=True)  # connect, warm up
        t0 = time.perf_counter()
        report = producer.publish(records, wait=True)
        send_s = time.perf_counter() - t0
        producer.close()
    finally:
        delete_topics(config, producer.topics.all())
    if report.delivered != n_records or report.refused or report.failed:
        raise RuntimeError(f"bench publish: {report.delivered}/{n_records} delivered, "
                           f"{len(report.refused)} refused, {len(report.failed)} failed")
    return {"n_records": n_records, "records_per_s": round(n_records / send_s),
            "seconds": round(send_s, 3),
            "encode_only_records_per_s": round(n_records / encode_s),
            "value_bytes_mean": round(sum(len(schema.encode(rec.validate(r, schema)))
                                          for r in records[:1000]) / min(1000, n_records))}


def _comet(config: PublishConfig, n_voevents: int) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    docs = [counterpart_voevent(synthetic_records(3, f"bench:{run}-{i}", per_event=3),
                                author_ivorn=config.author_ivorn, authored=now)
            for i in range(n_voevents)]
    build_s = time.perf_counter() - t0
    client = VTPClient.from_config(config)
    t0 = time.perf_counter()
    results = client.broadcast(docs)
    send_s = time.perf_counter() - t0
    bad = [r for r in results if not r.ok]
    if bad:
        raise RuntimeError(f"bench VTP: {len(bad)} of {n_voevents} not acknowledged; "
                           f"first: {bad[0].status} {bad[0].reason}")
    rtt = sorted(r.seconds for r in results)
    return {"n_voevents": n_voevents, "voevents_per_s": round(n_voevents / send_s, 1),
            "build_and_validate_per_s": round(n_voevents / build_s, 1),
            "submit_median_ms": round(statistics.median(rtt) * 1e3, 2),
            "submit_p95_ms": round(rtt[min(len(rtt) - 1, round(0.95 * (len(rtt) - 1)))] * 1e3, 2),
            "voevent_bytes_mean": round(sum(len(d.xml) for d in docs) / len(docs))}


def run(n_records: int = 20_000, n_voevents: int = 200,
        settings: configmod.Settings | None = None) -> dict[str, Any]:
    """Measure publishing to the configured (real) Kafka and Comet.

    Parameters
    ----------
    n_records : int
        Counterpart records sent to Kafka.
    n_voevents : int
        VOEvents submitted to Comet.
    settings : Settings, optional
        Default: :func:`mm_broker.core.config.load`.

    Returns
    -------
    dict
        ``{"benchmark": "publish", "cores": …, "kafka": {…}, "comet": {…}}``.
    """
    settings = configmod.load() if settings is None else settings
    config = PublishConfig.from_settings(settings).with_prefix(
        f"bench-{uuid.uuid4().hex[:8]}.mm")
    return {"benchmark": "publish", **machine(), "kafka": _kafka(config, n_records),
            "comet": _comet(config, n_voevents)}


def bench_publish(settings: configmod.Settings, n_records: int = 20_000,
                  n_voevents: int = 200) -> dict[str, Any]:
    """Registry entry of ``mm-broker bench publish``.

    Parameters
    ----------
    settings : Settings
        Configuration of the local (real) Kafka and Comet.
    n_records : int, optional
        Counterpart records sent to Kafka.
    n_voevents : int, optional
        VOEvents submitted to Comet.

    Returns
    -------
    dict
        As :func:`run`.
    """
    return run(n_records, n_voevents, settings=settings)
