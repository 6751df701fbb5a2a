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

from mm_broker.core.config import Settings

#: Columns of the enriched alerts written to the demo's output topic.
SHOWN = ("alert_id", "object_id", "survey", "obs_jd", "ra", "dec", "mag", "band",
         "quality_ok", "classification")
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

    from fink_core import session as sparkmod
    from fink_core import simulator, stream

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
    from fink_core.catalogues import load_default_catalogues
    from fink_core.pipeline import enriched_stream
    from mm_broker.core.provenance import Provenance

    raw = stream.read_kafka(spark, bootstrap, topic_in)
    catalogues = load_default_catalogues(settings.catalogue_dir())
    decoded = enriched_stream(spark, raw, catalogues,
                              Provenance.from_settings(settings, catalogues)).select(*SHOWN)
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


NIGHT_NOTICES = ("triggers/voevents/fink-mm_2024-01", "triggers/lvk_notices")
NIGHT_ALERTS = ("alerts/ztf/parquet/20240115_fink-mm",)


def ingest_night(settings: Settings) -> list[dict[str, object]]:
    """Ingest the night's notices into PostgreSQL (journal, versions, regions)."""
    from listeners.directory import notice_files
    from mm_broker.app.dataset import restore_embedded_skymap
    from mm_broker.app.ingest import Limits, ingest
    from mm_broker.core.db.migrate import engine_for

    engine = engine_for(settings)
    limits = Limits.from_settings(settings)
    files = notice_files([settings.data_dir / p for p in NIGHT_NOTICES])
    payloads = [(f, restore_embedded_skymap(f.read_bytes(), settings.data_dir)) for f in files]
    from listeners.parsers import NoticeError, parse

    def issue_key(item: tuple[Path, bytes]) -> tuple[int, str]:
        try:
            return (0, parse(item[1]).issue_time.isoformat())
        except NoticeError:
            return (1, str(item[0]))

    lines = []
    try:
        for f, payload in sorted(payloads, key=issue_key):
            lines.append(ingest(engine, payload, "dir", str(f), limits=limits).contract(str(f)))
    finally:
        engine.dispose()
    return lines


def main(settings: Settings, n_alerts: int = 20) -> int:
    """Run the demo; print what it did. Returns the process exit code."""
    from collections import Counter

    from fink_core.simulator import alert_files
    from mm_broker.app import replay, services

    print("== mm_broker demo ==")
    for item in services.up(settings):
        print(f"  {item.name:<11} {item.address}")

    # 1. The alert stream: real ZTF alerts through Kafka and Spark Structured Streaming.
    folder = settings.data_dir / DEMO_ALERTS
    paths = alert_files([folder])[:n_alerts]
    run_id = time.strftime("%Y%m%dT%H%M%S")
    print(f"\n[1] streaming {len(paths)} real ZTF alerts from {folder}")
    print("    Kafka source -> Spark Structured Streaming (fink_core: decode, flags, "
          "annotation) -> Kafka sink")
    records, timings = stream_through_spark(settings, paths, run_id)
    for rec in sorted(records, key=lambda r: str(r.get("alert_id")))[:5]:
        print(f"    {rec.get('alert_id')!s:>20} {rec.get('object_id')!s:>14} "
              f"ra={rec.get('ra', float('nan')):9.5f} dec={rec.get('dec', float('nan')):9.5f} "
              f"mag={rec.get('mag', float('nan')):5.2f} {rec.get('band')} "
              f"{rec.get('classification')}")
    print(f"    {len(paths)} alerts in, {len(records)} records out; "
          + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))

    # 2. The notices of 2024-01-12..15 into PostgreSQL as versioned regions.
    print("\n[2] notices of the night (GBM, Swift, INTEGRAL, LVK) -> regions in PostgreSQL")
    lines = ingest_night(settings)
    print(f"    {dict(Counter(str(x['status']) for x in lines))}")

    # 3. The night of 2024-01-15 replayed: alerts against the regions active at their time.
    out = settings.state_dir / "demo" / "replay-20240115"
    print(f"\n[3] replay of the night of 2024-01-15 -> {out}")
    summary = replay.replay(settings, [str(settings.data_dir / p) for p in NIGHT_NOTICES],
                            [str(settings.data_dir / p) for p in NIGHT_ALERTS], out,
                            publish=True, plot=True)
    print(f"    alerts: {summary['alerts']}")
    print(f"    notices: {summary['notices']}; counterparts: {summary['counterparts']}")
    recs = [json.loads(x) for x in (out / "counterparts.jsonl").read_text().splitlines()]
    print(f"\n    {'event':<22} {'candidates':>10}  best (rank 1: object, credible level, "
          "p_chance, delta_t)")
    by_event: dict[str, list[dict[str, object]]] = {}
    for r in recs:
        if r["status"] == "candidate":
            by_event.setdefault(str(r["event_id"]), []).append(r)
    for event, rows in sorted(by_event.items()):
        best = min(rows, key=lambda r: (float(str(r["p_chance"])), str(r["alert_id"])))
        print(f"    {event:<22} {len(rows):>10}  {best['object_id']} "
              f"CL={float(str(best['credible_level'])):.2f} "
              f"p={float(str(best['p_chance'])):.3g} "
              f"dt={float(str(best['delta_t_s'])) / 3600:.1f} h")
    print(f"\n    published: {summary['published']} (topics {settings.get('publish.topic_prefix')}"
          ".counterparts.*, VOEvents through Comet)")
    print(f"    written: {out / 'counterparts.jsonl'}, {out / 'summary.json'}, "
          f"{out / 'voevents'}/ ({len(list((out / 'voevents').glob('*.xml')))} VOEvents), "
          f"{out / 'plots'}/ ({summary.get('plots', 0)} plots)")
    print("    read them as a user would: .venv/bin/mm-broker consume --topic "
          "mm.counterparts.grb --table")
    return 0 if len(records) == len(paths) and recs else 1
