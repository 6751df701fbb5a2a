"""``make demo``: the main job on the bundled real data.

Five steps, one line each on stdout, then a summary a newcomer can read:

1. the local services come up (PostgreSQL, Kafka, Comet);
2. real ZTF alerts are produced to a Kafka topic, a Spark Structured Streaming query
   reads them with Spark's Kafka source, decodes and annotates them and writes them
   to an output topic with the Kafka sink; the demo reads them back;
3. the notices of 2024-01-12..15 (GBM, Swift, INTEGRAL, LVK) are ingested into
   PostgreSQL as versioned events and regions;
4. the night of 2024-01-15 is replayed: every alert against the regions active at its
   time;
5. the counterparts are published (Kafka topics, VOEvents through Comet) and written.

Details (sample alerts, timings, every log line of the services and clients) are at
DEBUG: ``mm-broker -v demo`` shows them. Without ``-v`` the demo keeps the console to
its steps, its summary and warnings.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer

from fink_core import session as sparkmod
from fink_core import simulator, stream
from fink_core.catalogues import load_default_catalogues
from fink_core.pipeline import enriched_stream
from listeners.directory import notice_files
from listeners.parsers import NoticeError, parse
from mm_broker.app import replay, services
from mm_broker.app.dataset import restore_embedded_skymap
from mm_broker.app.ingest import Limits, ingest
from mm_broker.app.provenance import rule_versions
from mm_broker.core.config import Settings
from mm_broker.core.db.migrate import engine_for
from mm_broker.core.kafka import client_config
from mm_broker.core.provenance import Provenance

log = logging.getLogger("mm_broker.demo")

#: Columns of the enriched alerts written to the demo's output topic.
SHOWN = ("alert_id", "object_id", "survey", "obs_jd", "ra", "dec", "mag", "band",
         "quality_ok", "classification")
DEMO_ALERTS = "alerts/ztf/avro/20181129_fink-alert-simulator"
NIGHT_NOTICES = ("triggers/voevents/fink-mm_2024-01", "triggers/lvk_notices")
NIGHT_ALERTS = ("alerts/ztf/parquet/20240115_fink-mm",)
STEPS = 5


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
    kafka = client_config(settings)
    bootstrap = str(kafka["bootstrap.servers"])
    topic_in, topic_out = f"demo.ztf.{run_id}", f"demo.decoded.{run_id}"
    timings: dict[str, float] = {}

    t0 = time.monotonic()
    report = simulator.send(alert_paths, topic_in, bootstrap, extra_config=kafka)
    timings["produce_s"] = time.monotonic() - t0
    if report.delivered != len(alert_paths):
        raise RuntimeError(f"only {report.delivered}/{len(alert_paths)} alerts delivered")

    t0 = time.monotonic()
    spark = sparkmod.session(settings, "mm_broker-demo")
    timings["spark_start_s"] = time.monotonic() - t0

    t0 = time.monotonic()
    raw = stream.read_kafka(spark, bootstrap, topic_in)
    catalogues = load_default_catalogues(settings.catalogue_dir())
    decoded = enriched_stream(spark, raw, catalogues,
                              Provenance.from_settings(settings, catalogues,
                                                       rule_versions())).select(*SHOWN)
    query = (stream.to_kafka_json(decoded, "alert_id").writeStream.format("kafka")
             .option("kafka.bootstrap.servers", bootstrap)
             .option("topic", topic_out)
             .option("checkpointLocation",
                     str(settings.state_dir / "checkpoints" / f"demo-{run_id}"))
             .trigger(availableNow=True)
             .start())
    query.awaitTermination()
    timings["stream_s"] = time.monotonic() - t0

    consumer = Consumer({**kafka, "group.id": f"demo-{run_id}",
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


def ingest_night(settings: Settings) -> list[dict[str, object]]:
    """Ingest the night's notices into PostgreSQL (journal, versions, regions), in
    order of issue time; one contract line (``notices ingest``) per payload."""
    engine = engine_for(settings)
    limits = Limits.from_settings(settings)
    files = notice_files([settings.data_dir / p for p in NIGHT_NOTICES])
    payloads = [(f, restore_embedded_skymap(f.read_bytes(), settings.data_dir)) for f in files]

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


def _quiet_console(verbose: bool) -> None:
    """Keep the console to the demo's own lines and warnings unless ``verbose``: the
    root logger passes WARNING and above for the rest of the process (the demo is the
    process's job; Spark's gateway still logs when it closes at exit)."""
    if not verbose:
        logging.getLogger().setLevel(logging.WARNING)


def _step(n: int, text: str) -> None:
    print(f"[{n}/{STEPS}] {text}", flush=True)


def _counts(counter: Mapping[str, Any]) -> str:
    return ", ".join(f"{v} {k}" for k, v in sorted(counter.items(), key=lambda kv: -kv[1]))


def _published(summary: Mapping[str, Any], prefix: str) -> str:
    pub = summary.get("published", {})
    sent, broadcast = pub.get("kafka_sent", 0), pub.get("voevents_broadcast", 0)
    if not sent and not broadcast:
        return ("nothing new on the topics or through Comet: this night was published by "
                "an earlier run (the store's outbox publishes each record once)")
    return (f"{sent} records on the Kafka topics ({prefix}.counterparts.*, "
            f"{prefix}.retractions), {broadcast} VOEvents broadcast through Comet")


def _num(value: Any) -> float:
    return float("inf") if value is None else float(value)


def _candidates_table(recs: list[dict[str, Any]]) -> list[str]:
    by_event: dict[str, list[dict[str, Any]]] = {}
    for r in recs:
        if r["status"] == "candidate":
            by_event.setdefault(str(r["event_id"]), []).append(r)
    lines = [f"  {'event':<22} {'candidates':>10}   best candidate (lowest chance probability)"]
    for event, rows in sorted(by_event.items()):
        best = min(rows, key=lambda r: (_num(r["p_chance"]), str(r["alert_id"])))
        where = (f"credible level {_num(best['credible_level']):.2f}"
                 if best.get("credible_level") is not None
                 else f"{_num(best['separation_deg']):.3f} deg from the centre")
        lines.append(f"  {event:<22} {len(rows):>10}   {best['object_id']}, {where}, "
                     f"p_chance {_num(best['p_chance']):.2g}, "
                     f"dt {round(_num(best['delta_t_s']) / 3600, 1) + 0.0:+.1f} h")
    return lines


def main(settings: Settings, n_alerts: int = 20, verbose: bool = False) -> int:
    """Run the demo; print its steps and a summary. Returns the process exit code.

    Parameters
    ----------
    settings : Settings
    n_alerts : int
        Real ZTF alerts streamed through Kafka and Spark in step 2.
    verbose : bool
        Also show the details and every INFO line (``mm-broker -v demo``); without
        it they are logged at DEBUG and only warnings pass.
    """
    print("mm_broker demo: a night of real notices and alerts, end to end\n", flush=True)
    _quiet_console(verbose)
    started = services.up(settings)
    _step(1, "services up: " + ", ".join(f"{s.name} {s.address}" for s in started
                                         if s.name in ("postgres", "kafka", "comet")))
    log.debug("services: %s", [(s.name, s.address, round(s.seconds, 1)) for s in started])

    folder = settings.data_dir / DEMO_ALERTS
    paths = simulator.alert_files([folder])[:n_alerts]
    run_id = time.strftime("%Y%m%dT%H%M%S")
    t0 = time.monotonic()
    records, timings = stream_through_spark(settings, paths, run_id)
    _step(2, f"alerts streamed: {len(paths)} real ZTF alerts -> Kafka -> Spark Structured "
             f"Streaming (decode, quality flags, annotation) -> Kafka, {len(records)} "
             f"enriched records read back ({time.monotonic() - t0:.0f} s)")
    log.debug("alerts from %s; %s", folder,
              ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    for rec in sorted(records, key=lambda r: str(r.get("alert_id")))[:5]:
        log.debug("  %s", {k: rec.get(k) for k in SHOWN})

    lines = ingest_night(settings)
    statuses = Counter(str(x["status"]) for x in lines)
    events = {x["event_id"] for x in lines if x.get("event_id")}
    _step(3, f"notices ingested: {len(lines)} notices of 2024-01-12..15 (GBM, Swift, "
             f"INTEGRAL, LVK) -> {len(events)} events with versioned regions in "
             f"PostgreSQL ({_counts(statuses)})")
    for x in lines:
        log.debug("  %s", json.dumps(x))

    out = settings.state_dir / "demo" / "replay-20240115"
    summary = replay.replay(settings, [str(settings.data_dir / p) for p in NIGHT_NOTICES],
                            [str(settings.data_dir / p) for p in NIGHT_ALERTS], out,
                            publish=True, plot=True)
    recs = [json.loads(x) for x in (out / "counterparts.jsonl").read_text().splitlines()]
    n_events = len({r["event_id"] for r in recs if r["status"] == "candidate"})
    cands = sum(r["status"] == "candidate" for r in recs)
    alerts = summary["alerts"]
    _step(4, f"replay of the night of 2024-01-15: {alerts.get('alerts_unique', 0)} alerts "
             f"against the regions active at their time -> {cands} counterpart "
             f"candidates of {n_events} events"
             + (f" ({len(recs) - cands} withdrawn)" if len(recs) > cands else ""))
    log.debug("replay summary: %s", json.dumps({k: summary[k] for k in
                                                ("alerts", "notices", "counterparts",
                                                 "published") if k in summary}))
    _step(5, "publishing: " + _published(summary, settings.publish.topic_prefix))

    print("\nCounterpart candidates of the night")
    for line in _candidates_table(recs):
        print(line)
    n_voevents = len(list((out / "voevents").glob("*.xml")))
    print(f"\nWritten to {out}/:\n  counterparts.jsonl, retractions.jsonl, summary.json, "
          f"voevents/ ({n_voevents} VOEvents), plots/ ({summary.get('plots', 0)} plots)")
    print("Read the counterparts as a user would:\n  .venv/bin/mm-broker consume --topic "
          "mm.counterparts.grb --table")
    if not verbose:
        print("Every detail of the run: .venv/bin/mm-broker -v demo")
    s = settings.serve
    print(f"Open the night in a browser (events, maps, candidates, light curves, API):\n"
          f"  .venv/bin/mm-broker serve   then  http://{s.host}:{s.port}/")
    return 0 if len(records) == len(paths) and recs else 1
