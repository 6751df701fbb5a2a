"""``make demo``: the main job on the bundled real data.

Foundation stage: the local services come up, real ZTF alerts from the shared data
are produced to a Kafka topic, a Spark Structured Streaming query reads them with
Spark's Kafka source, decodes them, and writes one JSON record per alert to an
output topic with the Kafka sink; the demo then reads the output topic back and
prints what went through.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from mm_broker.config import Settings

DEMO_ALERTS = "alerts/ztf/avro/20181129_fink-alert-simulator"


def stream_through_spark(settings: Settings, alert_paths: list[Path], run_id: str,
                         ) -> tuple[list[dict[str, object]], dict[str, float]]:
    """Produce alerts to Kafka, run them through Spark streaming, read the output back.

    Returns
    -------
    records : list of dict
        Records read from the output topic.
    timings : dict
        Seconds spent in each step.
    """
    from confluent_kafka import Consumer

    from fink_core import simulator, stream
    from mm_broker import spark as sparkmod

    bootstrap = str(settings.get("kafka.bootstrap"))
    topic_in, topic_out = f"demo.ztf.{run_id}", f"demo.decoded.{run_id}"
    timings: dict[str, float] = {}

    t0 = time.monotonic()
    report = simulator.send(alert_paths, topic_in, bootstrap)
    timings["produce_s"] = time.monotonic() - t0
    if report.delivered != len(alert_paths):
        raise RuntimeError(f"only {report.delivered}/{len(alert_paths)} alerts delivered")

    t0 = time.monotonic()
    spark = sparkmod.session(settings, "mm_broker-demo")
    timings["spark_start_s"] = time.monotonic() - t0

    t0 = time.monotonic()
    raw = stream.read_kafka(spark, bootstrap, topic_in)
    decoded = raw.select("key", "value").mapInPandas(stream.decode_basic, stream.BASIC_SCHEMA)
    query = (stream.to_kafka_json(decoded, "alert_id").writeStream.format("kafka")
             .option("kafka.bootstrap.servers", bootstrap)
             .option("topic", topic_out)
             .option("checkpointLocation",
                     str(settings.state_dir / "checkpoints" / f"demo-{run_id}"))
             .trigger(availableNow=True)
             .start())
    query.awaitTermination()
    timings["stream_s"] = time.monotonic() - t0

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"demo-{run_id}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "session.timeout.ms": 6000})
    consumer.subscribe([topic_out])
    records: list[dict[str, object]] = []
    deadline = time.monotonic() + 30
    while len(records) < len(alert_paths) and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        value = None if msg is None or msg.error() else msg.value()
        if value is not None:
            records.append(json.loads(value))
    consumer.close()
    return records, timings


def main(settings: Settings, n_alerts: int = 20) -> int:
    """Run the demo; print what it did. Returns the process exit code."""
    from fink_core.simulator import alert_files
    from mm_broker import services

    print("== mm_broker demo ==")
    for item in services.up(settings):
        print(f"  {item.name:<11} {item.address}")
    folder = settings.data_dir / DEMO_ALERTS
    paths = alert_files([folder])[:n_alerts]
    if not paths:
        print(f"no alerts found under {folder}")
        return 1
    run_id = time.strftime("%Y%m%dT%H%M%S")
    print(f"\nstreaming {len(paths)} real ZTF alerts from {folder}")
    print("  Kafka source -> Spark Structured Streaming (fastavro decode) -> Kafka sink")
    records, timings = stream_through_spark(settings, paths, run_id)
    print(f"\n{'alert_id':>20} {'object_id':>14} {'ra':>10} {'dec':>10} {'jd':>15} "
          f"{'mag':>6} band")
    for rec in sorted(records, key=lambda r: str(r.get("alert_id"))):
        print(f"{rec.get('alert_id')!s:>20} {rec.get('object_id')!s:>14} "
              f"{rec.get('ra', float('nan')):10.5f} {rec.get('dec', float('nan')):10.5f} "
              f"{rec.get('obs_jd', float('nan')):15.6f} {rec.get('mag', float('nan')):6.2f} "
              f"{rec.get('band')}")
    print(f"\n{len(paths)} alerts in, {len(records)} records out; "
          + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    return 0 if len(records) == len(paths) else 1
