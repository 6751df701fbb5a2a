"""The ``mm-broker`` command line.

Each sub-command is a small function taking the parsed arguments and the effective
configuration; the heavy modules are imported inside them so that ``mm-broker --help``
stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Sequence

from mm_broker import __version__
from mm_broker.core import config as configmod

log = logging.getLogger("mm_broker")

Handler = Callable[[argparse.Namespace, configmod.Settings], int]


def _services(args: argparse.Namespace, settings: configmod.Settings) -> int:
    from mm_broker.app import services

    if args.action == "up":
        for item in services.up(settings):
            print(f"{item.name:<11} {item.address}  ({item.seconds:.1f} s)")
    elif args.action == "down":
        for name, was in services.down(settings):
            print(f"{name:<11} {'stopped' if was else 'was not running'}")
    else:
        for name, state in services.status(settings):
            print(f"{name:<11} {state}")
    return 0


def _config_show(args: argparse.Namespace, settings: configmod.Settings) -> int:
    print(json.dumps({"source": settings.source, "hash": settings.hash(),
                      "config": settings.redacted()}, indent=2, default=str))
    return 0


def _db(args: argparse.Namespace, settings: configmod.Settings) -> int:
    from mm_broker.core.db import migrate

    if args.action == "upgrade":
        revision = migrate.upgrade(settings)
    else:
        engine = migrate.engine_for(settings)
        try:
            revision = migrate.current(engine)
        finally:
            engine.dispose()
    print(json.dumps({"revision": revision, "head": migrate.head()}))
    return 0


def _demo(args: argparse.Namespace, settings: configmod.Settings) -> int:
    from mm_broker.app import demo

    return demo.main(settings, n_alerts=args.n_alerts)


def _notices_ingest(args: argparse.Namespace, settings: configmod.Settings) -> int:
    from listeners.directory import ingest_paths
    from mm_broker.app.ingest import Limits
    from mm_broker.core.db.migrate import engine_for

    engine = engine_for(settings)
    try:
        for path, result in ingest_paths(engine, args.paths, Limits.from_settings(settings),
                                         source="dir"):
            print(json.dumps(result.contract(str(path))), flush=True)
    finally:
        engine.dispose()
    return 0


def _listen(args: argparse.Namespace, settings: configmod.Settings) -> int:
    from listeners.daemon import Stopper
    from mm_broker.app.ingest import Limits
    from mm_broker.core.db.migrate import engine_for

    if args.transport == "vtp":
        from listeners import vtp

        if not args.remote:
            print("mm-broker listen vtp: --remote HOST:PORT is required", file=sys.stderr)
            return 2
        vtp.run(settings, args.remote)
        return 0
    engine = engine_for(settings)
    stopper = Stopper()
    try:
        if args.transport == "gcn":
            from listeners import gcn

            n = gcn.run(settings, engine, stopper, topics=args.topic or None)
        else:
            from pathlib import Path

            from listeners import directory

            if not args.path:
                print("mm-broker listen dir: PATH is required", file=sys.stderr)
                return 2
            n = directory.watch(engine, Path(args.path), Limits.from_settings(settings),
                                stopper, float(settings.get("listen.dir_poll_s")),
                                (float(settings.get("listen.backoff_initial_s")),
                                 float(settings.get("listen.backoff_max_s"))))
    finally:
        engine.dispose()
    log.info("listener stopped after %d payloads", n)
    return 0


def _bench(args: argparse.Namespace, settings: configmod.Settings) -> int:
    from mm_broker.app import bench

    table = bench.registry()
    if args.name not in table:
        print(f"unknown benchmark {args.name!r}; known: {', '.join(sorted(table))}",
              file=sys.stderr)
        return 2
    params: dict[str, float] = {}
    for item in args.param or []:
        key, _, value = item.partition("=")
        params[key.replace("-", "_")] = float(value) if "." in value else int(value)
    figures = table[args.name](settings, **params)
    print(json.dumps(figures, indent=None if args.json else 2))
    return 0


def _alerts(args: argparse.Namespace, settings: configmod.Settings) -> int:
    if args.action == "send":
        from fink_core import simulator

        topic = args.topic or str(settings.get("alerts.topics")[0])
        report = simulator.send(args.paths, topic, str(settings.get("kafka.bootstrap")),
                                rate=args.rate, repeat=args.repeat)
        print(json.dumps({"topic": topic, "sent": report.sent, "delivered": report.delivered,
                          "failed": report.failed, "seconds": round(report.seconds, 3),
                          "rate_per_s": round(report.rate, 1)}))
        return 0 if report.failed == 0 else 1
    if args.action == "compact":
        from fink_core import compact

        try:
            merged = compact.compact(settings.archive_uri(), settings.checkpoint_uri(),
                                     service=args.service, nights=args.night or None,
                                     min_age_days=args.min_age_days)
        except compact.CompactionError as exc:
            print(f"mm-broker alerts compact: {exc}", file=sys.stderr)
            return 1
        print(json.dumps(dataclasses.asdict(merged)))
        return 0
    from fink_core import runner

    counts = runner.archive(settings, topics=args.topic and [args.topic],
                            once=args.once)
    print(json.dumps(counts))
    return 0


def _replay(args: argparse.Namespace, settings: configmod.Settings) -> int:
    from pathlib import Path

    from mm_broker.app import replay

    summary = replay.replay(settings, args.notices, args.alerts, Path(args.out),
                            publish=args.publish)
    print(json.dumps({k: summary[k] for k in ("alerts", "notices", "counterparts",
                                                "published")}))
    return 0


def _run(args: argparse.Namespace, settings: configmod.Settings) -> int:
    import signal
    import threading

    from mm_broker.app import run

    stop = threading.Event()

    def handle(signum: int, frame: object) -> None:
        logging.getLogger("mm_broker.app.run").info("signal %d: stopping after the current "
                                                "micro-batch", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    counts = run.run(settings, once=args.once, stop=stop)
    print(json.dumps(counts))
    return 0


def _plot(args: argparse.Namespace, settings: configmod.Settings) -> int:
    from pathlib import Path

    from mm_broker.app import plotcmd

    try:
        n = plotcmd.plot(settings, args.event_id, Path(args.out))
    except plotcmd.PlotError as exc:
        print(f"mm-broker plot: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"event_id": args.event_id, "out": args.out, "candidates": n}))
    return 0


def parser() -> argparse.ArgumentParser:
    """Build the argument parser of ``mm-broker``."""
    p = argparse.ArgumentParser(prog="mm-broker", description=__doc__.split("\n")[0])
    p.add_argument("--version", action="version", version=f"mm-broker {__version__}")
    p.add_argument("--config", help="site configuration TOML (default: $MM_CONFIG)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("services", help="start, stop or inspect the local services")
    s.add_argument("action", choices=["up", "down", "status"])
    s.set_defaults(func=_services)

    c = sub.add_parser("config", help="configuration")
    c.add_argument("action", choices=["show"])
    c.set_defaults(func=_config_show)

    dbp = sub.add_parser("db", help="the store's schema (Alembic migrations)")
    dbp.add_argument("action", choices=["upgrade", "current"],
                     help="upgrade: migrate to the newest revision (a managed PostgreSQL); "
                          "current: print the revision")
    dbp.set_defaults(func=_db)

    n = sub.add_parser("notices", help="notices: ingest files")
    n.add_argument("action", choices=["ingest"])
    n.add_argument("paths", nargs="+", help="notice files or folders")
    n.set_defaults(func=_notices_ingest)

    al = sub.add_parser("alerts", help="alert streams: simulator and archive pipeline")
    al.add_argument("action", choices=["send", "archive", "compact"],
                    help="send: produce alert files to Kafka; archive: the archive "
                         "pipeline; compact: merge the enriched archive's committed "
                         "files into one per night and sky cell")
    al.add_argument("paths", nargs="*", help="alert files or folders (send)")
    al.add_argument("--topic", help="Kafka topic (default: first of [alerts] topics)")
    al.add_argument("--rate", type=float, default=None, help="alerts per second (send)")
    al.add_argument("--repeat", type=int, default=1, help="passes over the files (send)")
    al.add_argument("--once", action="store_true",
                    help="archive what is in the topics now, then stop (archive)")
    al.add_argument("--night", action="append",
                    help="compact only this night, YYYYMMDD (repeatable; compact)")
    al.add_argument("--min-age-days", type=float, default=1.0,
                    help="compact nights at least this old (default 1; compact)")
    al.add_argument("--service", default="service",
                    help="checkpoint folder of the `run` service writing the archive "
                         "(compact)")
    al.set_defaults(func=_alerts)

    li = sub.add_parser("listen", help="run a notice daemon in the foreground")
    li.add_argument("transport", choices=["gcn", "vtp", "dir"])
    li.add_argument("path", nargs="?", help="folder to watch (dir)")
    li.add_argument("--remote", help="HOST:PORT of the VTP broker (vtp)")
    li.add_argument("--topic", action="append", help="GCN topic (repeat; default: config)")
    li.set_defaults(func=_listen)

    r = sub.add_parser("replay", help="offline run of notices and alerts in time order")
    r.add_argument("--notices", nargs="+", required=True, help="notice files or folders")
    r.add_argument("--alerts", nargs="+", required=True, help="alert files or folders")
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--publish", action="store_true",
                   help="also publish to the Kafka topics and broadcast through Comet")
    r.set_defaults(func=_replay)

    from publishers import consume as pubconsume

    co = sub.add_parser("consume", help="read counterparts as a user would")
    pubconsume.add_arguments(co)
    co.set_defaults(func=pubconsume.run_cli)

    pl = sub.add_parser("plot", help="draw an event's region and candidates")
    pl.add_argument("event_id")
    pl.add_argument("--out", required=True, help="PNG file")
    pl.set_defaults(func=_plot)

    rn = sub.add_parser("run", help="the streaming service: alerts in, counterparts out")
    rn.add_argument("--once", action="store_true",
                    help="process what the alert topics hold now, then stop")
    rn.set_defaults(func=_run)

    b = sub.add_parser("bench", help="run one benchmark and print its figures as JSON")
    b.add_argument("name", help="notices, pipeline, join, latency, retro, publish, soak")
    b.add_argument("--json", action="store_true", help="one-line JSON")
    b.add_argument("--param", action="append",
                   help="benchmark parameter KEY=VALUE, e.g. rate=200 or, for soak, "
                        "minutes=1 (repeatable; see benchmarks/README.md)")
    b.set_defaults(func=_bench)

    d = sub.add_parser("demo", help="run the demo on the bundled real data")
    d.add_argument("--n-alerts", type=int, default=20, help="ZTF alerts to stream")
    d.set_defaults(func=_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mm-broker`` console script."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        settings = configmod.load(args.config)
    except configmod.ConfigError as exc:
        print(f"mm-broker: configuration error: {exc}", file=sys.stderr)
        return 2
    func: Handler = args.func
    from sqlalchemy.exc import OperationalError

    try:
        return func(args, settings)
    except OperationalError as exc:  # the store is away or refuses us: one clear line
        reason = str(exc.orig or exc).strip().splitlines()[0]
        print(f"mm-broker: database unavailable: {reason}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
