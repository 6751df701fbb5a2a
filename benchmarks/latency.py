"""``mm-broker bench latency``: alert in → counterpart out, through ``mm-broker run``.

Alerts written to the service's input topic at ``rate`` alerts/s for ``seconds``; the
latency of each is the timestamp of its counterpart message on the output topic minus
the time it was produced. The service runs as a subprocess on the local services, on
scratch resources (:class:`~benchmarks.scratch_service.ScratchService`).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np
from confluent_kafka import Producer

from benchmarks.alert_stream import (
    LATENCY_ALERT,
    AlertTemplate,
    CounterpartFollower,
    ep_notice,
    jd_datetime,
    pace,
)
from benchmarks.common import machine, percentiles
from benchmarks.scratch_service import ScratchService
from mm_broker.core.config import Settings
from mm_broker.core.kafka import log_config

#: Spark trigger interval of the service during the benchmark.
TRIGGER = "500 milliseconds"


def bench_latency(settings: Settings, rate: float = 1000.0, seconds: float = 30.0,
                  ) -> dict[str, Any]:
    """Alert written to the input topic → its counterpart on the output topic.

    Every alert is a copy of one real ZTF alert (new candid) inside one Einstein Probe
    circle, so every alert has a counterpart (the worst case: each one is stored,
    published on Kafka and in a VOEvent).

    Parameters
    ----------
    settings : Settings
        Configuration of the local services.
    rate : float, optional
        Alerts per second.
    seconds : float, optional
        Seconds of sending.

    Returns
    -------
    dict
        ``median_s``, ``p95_s``, ``rate_per_s``, ``alerts``,
        ``counterparts_received``, ``goal_p95_s``, ``trigger`` and
        :func:`~benchmarks.common.machine`.

    Raises
    ------
    RuntimeError
        If no counterpart arrived.
    """
    template = AlertTemplate(settings.data_dir / LATENCY_ALERT)
    t0 = jd_datetime(template.first_jd - 60 / 86400)
    n = int(rate * seconds)
    base = 10**17 + int(uuid.uuid4().int % 10**12) * 1000
    sent_at = np.zeros(n)
    with ScratchService(settings, "latency", TRIGGER) as svc:
        svc.ingest(ep_notice(f"8{svc.tag}", t0, template.ra, template.dec, 1.0))
        producer = Producer({**log_config(settings), "bootstrap.servers": svc.bootstrap,
                             "linger.ms": 1})
        follower = CounterpartFollower(svc.bootstrap, [svc.counterpart_topic()], sent_at,
                                       base)
        follower.start()
        svc.start()
        pace(producer, svc.topic_in,
             lambda i: (str(base + i).encode(), template.copy(base + i)), n, rate, sent_at)
        deadline = time.time() + 60
        while len(follower.latency) < n and time.time() < deadline:
            time.sleep(0.5)
        follower.stop.set()
        follower.join(10)
    latencies = [lat for _, lat in follower.latency]
    if not latencies:
        raise RuntimeError(f"no counterpart arrived on the output topic; see {svc.log_path}")
    stats = percentiles(latencies)
    return {"benchmark": "latency", **machine(), "rate_per_s": rate, "alerts": n,
            "counterparts_received": len(latencies),
            "median_s": round(stats["median_ms"] / 1e3, 3),
            "p95_s": round(stats["p95_ms"] / 1e3, 3), "goal_p95_s": 5.0,
            "trigger": TRIGGER}
