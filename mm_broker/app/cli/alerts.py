"""``mm-broker alerts send|archive|compact|enrich``: the alert simulator, the archive
pipeline, the archive's compaction and the batch enrichment into Parquet."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from fink_core import compact, simulator
from mm_broker.app.archive import archive
from mm_broker.app.enrich import enrich_command
from mm_broker.core.config import Settings
from mm_broker.core.kafka import client_config as kafka_client_config


def parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``alerts``."""
    p.add_argument("action", choices=["send", "archive", "compact", "enrich"],
                   help="send: produce alert files to Kafka; archive: the archive "
                        "pipeline; compact: merge the enriched archive's committed "
                        "files into one per night and sky cell; enrich: alert files "
                        "(Avro, Fink Parquet) -> enriched Parquet files under --out")
    p.add_argument("paths", nargs="*", help="alert files or folders (send, enrich)")
    p.add_argument("--out", help="output folder of the enriched Parquet files (enrich)")
    p.add_argument("--topic", help="Kafka topic (default: first of [alerts] topics)")
    p.add_argument("--rate", type=float, default=None, help="alerts per second (send)")
    p.add_argument("--repeat", type=int, default=1, help="passes over the files (send)")
    p.add_argument("--once", action="store_true",
                   help="archive what is in the topics now, then stop (archive)")
    p.add_argument("--night", action="append",
                   help="compact only this night, YYYYMMDD (repeatable; compact)")
    p.add_argument("--min-age-days", type=float, default=1.0,
                   help="compact nights at least this old (default 1; compact)")
    p.add_argument("--service", default="service",
                   help="checkpoint folder of the `run` service writing the archive "
                        "(compact)")
    return p


def main(args: argparse.Namespace, settings: Settings) -> int:
    """Run the chosen alert action."""
    if args.action == "send":
        topic = args.topic or str(settings.alerts.topics[0])
        report = simulator.send(args.paths, topic, settings.kafka.bootstrap,
                                rate=args.rate, repeat=args.repeat,
                                extra_config=kafka_client_config(settings))
        print(json.dumps({"topic": topic, "sent": report.sent, "delivered": report.delivered,
                          "failed": report.failed, "seconds": round(report.seconds, 3),
                          "rate_per_s": round(report.rate, 1)}))
        return 0 if report.failed == 0 else 1
    if args.action == "compact":
        try:
            merged = compact.compact(settings.archive_uri(), settings.checkpoint_uri(),
                                     service=args.service, nights=args.night or None,
                                     min_age_days=args.min_age_days)
        except compact.CompactionError as exc:
            print(f"mm-broker alerts compact: {exc}", file=sys.stderr)
            return 1
        print(json.dumps(dataclasses.asdict(merged)))
        return 0
    if args.action == "enrich":
        if not args.paths or not args.out:
            print("mm-broker alerts enrich: give PATH... and --out DIR", file=sys.stderr)
            return 2
        try:
            summary = enrich_command(settings, args.paths, args.out)
        except FileNotFoundError as exc:
            print(f"mm-broker alerts enrich: {exc}", file=sys.stderr)
            return 1
        print(json.dumps(summary))
        return 0
    counts = archive(settings, topics=args.topic and [args.topic], once=args.once)
    print(json.dumps(counts))
    return 0
