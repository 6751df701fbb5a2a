"""``mm-broker bench NAME --json``: one benchmark, one JSON object of figures.

Each benchmark returns a dict of figures with their units in the key names
(``_ms``, ``_per_s``) plus the machine's core count; ``benchmarks/README.md`` lists
them. Benchmarks run against the real local services where the figure is about
them (``notices``: PostgreSQL), never inside the test suite.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, select

from mm_broker.core.config import Settings

log = logging.getLogger("mm_broker.app.bench")

#: Real notices used by ``bench notices``, relative to the data directory.
CIRCLE_NOTICE = "notices/swift/BAT_GRB_Pos_655721-214.xml"
MAP_NOTICE_DIR = "notices/lvk"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    load = os.getloadavg()
    return {"cores": os.cpu_count(), "loadavg_1min": round(load[0], 2),
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"median_ms": round(statistics.median(ordered) * 1e3, 2),
            "p95_ms": round(p95 * 1e3, 2), "n": len(ordered)}


def _forget_event(engine: Any, event_id: str) -> None:
    """Remove an event and everything stored for it (between benchmark iterations)."""
    from mm_broker.core.db.schema import events, notices, raw_journal, regions

    with engine.begin() as conn:
        jids = conn.execute(select(notices.c.journal_id)
                            .where(notices.c.event_id == event_id)).scalars().all()
        conn.execute(events.update().where(events.c.event_id == event_id)
                     .values(active_region_id=None))
        conn.execute(raw_journal.update().where(raw_journal.c.id.in_(jids))
                     .values(notice_id=None))
        conn.execute(delete(regions).where(regions.c.event_id == event_id))
        conn.execute(delete(notices).where(notices.c.event_id == event_id))
        conn.execute(delete(events).where(events.c.event_id == event_id))
        conn.execute(delete(raw_journal).where(raw_journal.c.id.in_(jids)))


def _lvk_map_notice(data_dir: Path) -> Path:
    for path in sorted((data_dir / MAP_NOTICE_DIR).rglob("*.json")):
        text = path.read_bytes()
        if b'"skymap"' in text and b'"PRELIMINARY"' in text or b'"INITIAL"' in text:
            if b'"skymap": null' not in text and len(text) > 10_000:
                return path
    raise FileNotFoundError(f"no igwn.gwalert JSON with an embedded map under {data_dir}")


def bench_notices(settings: Settings, repeat: int = 30) -> dict[str, Any]:
    """Notice received → region stored and active, for a circle and an LVK map notice."""
    from mm_broker.core.db.scratch import temporary_database

    with temporary_database(settings, "mm_bench") as scratch:
        return _bench_notices(scratch, repeat)


def _bench_notices(settings: Settings, repeat: int) -> dict[str, Any]:
    from mm_broker.app.ingest import Limits, ingest
    from mm_broker.core.db.migrate import engine_for

    engine = engine_for(settings)
    limits = Limits.from_settings(settings)
    out: dict[str, Any] = {"benchmark": "notices", **machine()}
    cases = {"circle": settings.data_dir / CIRCLE_NOTICE,
             "skymap": _lvk_map_notice(settings.data_dir)}
    try:
        for name, path in cases.items():
            payload = path.read_bytes()
            samples = []
            for i in range(repeat + 2):
                # Trailing whitespace makes new bytes (no duplicate) with the same content.
                data = payload + b" " * (i + 1)
                t0 = time.perf_counter()
                result = ingest(engine, data, "bench", "bench", limits=limits)
                dt = time.perf_counter() - t0
                if result.status != "stored":
                    raise RuntimeError(f"{path}: {result.status} {result.reason}")
                if i >= 2:  # the first two warm imports and caches
                    samples.append(dt)
                assert result.notice is not None
                _forget_event(engine, result.notice.event_id)
            out[name] = {"file": str(path.relative_to(settings.data_dir)),
                         **_percentiles(samples)}
        out["goal_ms_p95"] = {"circle": 20, "skymap": 300}
    finally:
        engine.dispose()
    return out


def bench_pipeline(settings: Settings, n_alerts: int = 40_000) -> dict[str, Any]:
    """Alerts per second through decode + flags + annotation in Spark ``local[*]``.

    The real Avro alerts of the shared data (ZTF and LSST) are cycled to ``n_alerts``
    payloads in a DataFrame (cached before the clock starts), then the fink_core
    ``mapInPandas`` enrichment runs over them and its output is counted.
    """
    from fink_core import session as sparkmod
    from fink_core.catalogues import load_default_catalogues
    from fink_core.pipeline import enriched_stream
    from fink_core.simulator import alert_files
    from mm_broker.core.provenance import Provenance

    files = alert_files([settings.data_dir / "alerts/ztf/avro",
                         settings.data_dir / "alerts/lsst/avro"])
    pool = [(f.read_bytes(), "bench", 0, i) for i, f in enumerate(files)]
    copies = max(1, n_alerts // len(pool))
    n_alerts = copies * len(pool)
    spark = sparkmod.session(settings, "mm_broker-bench-pipeline")
    cores = spark.sparkContext.defaultParallelism
    # The real payloads go to the JVM once and are replicated there (not through Python).
    base = spark.createDataFrame(pool, "value binary, topic string, partition int, offset long")
    df = base.crossJoin(spark.range(copies).withColumnRenamed("id", "copy")) \
        .drop("copy").repartition(cores).cache()
    df.count()
    catalogues = load_default_catalogues(settings.catalogue_dir())
    provenance = Provenance.from_settings(settings, catalogues)
    t0 = time.perf_counter()
    n_out = enriched_stream(spark, df, catalogues, provenance).count()
    dt = time.perf_counter() - t0
    df.unpersist()
    rate = n_alerts / dt
    return {"benchmark": "pipeline", **machine(), "spark_master": spark.sparkContext.master,
            "spark_parallelism": cores, "alerts": n_alerts, "rows_out": int(n_out),
            "seconds": round(dt, 2), "alerts_per_s": round(rate, 1),
            "alerts_per_s_per_core": round(rate / cores, 1), "goal_alerts_per_s": 1700,
            "catalogues": [c.key for c in catalogues]}


def bench_join(settings: Settings) -> dict[str, Any]:
    """Join kernel against 100 active regions vs the bare numpy limit (same run)."""
    from coincidence.bench import run_join_bench

    return {"benchmark": "join", **machine(), **run_join_bench()}


def bench_publish(settings: Settings) -> dict[str, Any]:
    """Records/s to Kafka and VOEvents/s through Comet."""
    from publishers.bench import bench_publish as run

    return {"benchmark": "publish", **machine(), **run(settings)}


RETRO_MAP = "skymaps/gw/S230518h-INITIAL-20230518T160718Z.multiorder.fits"


def _synthetic_archive(root: Path, n_alerts: int, t0_jd: float, nights: int = 20,
                       seed: int = 7) -> None:
    """Write ``n_alerts`` alerts uniform on the sky over ``nights`` nights after t0 into
    an archive laid out as fink_core's (``enriched/night=…/hpx1=…``, the columns the
    retro-match reads), one file per partition (as after a nightly compaction)."""
    import healpy as hp
    import pyarrow as pa
    import pyarrow.dataset as ds

    from fink_core.pipeline import PARTITION_ORDER

    rng = np.random.default_rng(seed)
    per_night = n_alerts // nights
    first_night = int(np.floor(t0_jd - 0.5))
    for k in range(nights):
        n = per_night if k < nights - 1 else n_alerts - per_night * (nights - 1)
        start = k * per_night
        ra = rng.uniform(0, 360, n)
        dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
        ipix = hp.ang2pix(2**29, ra, dec, nest=True, lonlat=True).astype(np.int64)
        jd = first_night + k + 0.5 + rng.uniform(0, 1, n)
        first = jd - rng.exponential(5.0, n)
        day = pd.Timestamp((first_night + k + 0.5 - 2440587.5) * 86400, unit="s")
        table = pa.table({
            "alert_id": pa.array((np.arange(start, start + n) + 10**15).astype(str)),
            "object_id": pa.array((np.arange(start, start + n) % 5_000_000).astype(str)),
            "survey": pa.array(np.full(n, "ztf")),
            "ra": ra, "dec": dec, "ipix29": ipix, "obs_jd": jd, "first_detection_jd": first,
            "quality_ok": np.ones(n, dtype=bool),
            "night": pa.array(np.full(n, day.strftime("%Y%m%d"))),
            "hpx1": (ipix >> (2 * (29 - PARTITION_ORDER))).astype(np.int32),
        }).sort_by("ipix29")
        ds.write_dataset(table, str(root / "enriched"), format="parquet",
                         partitioning=["night", "hpx1"], partitioning_flavor="hive",
                         existing_data_behavior="overwrite_or_ignore",
                         basename_template=f"part-{k}-{{i}}.parquet")


def bench_retro(settings: Settings, n_alerts: int = 10_000_000) -> dict[str, Any]:
    """A new region (the real S230518h map, 666 deg²) against ``n_alerts`` archived
    alerts spread over 20 nights: seconds until all its associations are emitted."""
    from astropy.time import Time

    import skymaps
    from coincidence.archive_store import ArchiveAlertStore
    from coincidence.engine import CoincidenceEngine, EventMeta
    from coincidence.pchance import FixedRate
    from mm_broker.core.models import Messenger, Role, SkyMap

    region = skymaps.region_for(SkyMap((settings.data_dir / RETRO_MAP).read_bytes()))
    t0 = datetime(2023, 5, 18, 12, 59, 8, 167000, tzinfo=UTC)
    root = settings.state_dir / "bench" / f"retro-v2-{n_alerts}"
    marker = root / ".complete"
    t_gen = 0.0
    if not marker.exists():
        t1 = time.perf_counter()
        _synthetic_archive(root, n_alerts, float(Time(t0).jd))
        marker.write_text("ok\n")
        t_gen = time.perf_counter() - t1
    store = ArchiveAlertStore(str(root))
    engine = CoincidenceEngine(store=store, rate=FixedRate(0.5))
    meta = EventMeta("LVK:S230518h", Messenger.GW, "LVK", "H1,L1", t0, 1, Role.OBSERVATION)
    t1 = time.perf_counter()
    emitted = engine.add_region(meta, 1, region)
    dt = time.perf_counter() - t1
    return {"benchmark": "retro", **machine(), "archived_alerts": n_alerts, "nights": 20,
            "region": RETRO_MAP, "region_area_deg2": round(region.area_deg2, 1),
            "associations": len(emitted), "seconds": round(dt, 3), "goal_seconds": 10,
            "archive_generation_s": round(t_gen, 1)}


LATENCY_ALERT = "alerts/ztf/avro/20181129_fink-alert-simulator/697251920115015007.avro"
EP_WXT_SCHEMA = ("https://gcn.nasa.gov/schema/main/gcn/notices/einstein_probe/wxt/"
                 "alert.schema.json")
CUTOUT_FIELDS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")
#: Name of the service's checkpoint folder (``mm-broker run`` uses the default).
SERVICE_NAME = "service"


def _zigzag_varint(value: int) -> bytes:
    """Avro's encoding of a long: zig-zag, then base-128 varint."""
    z = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        byte, z = z & 0x7F, z >> 7
        if not z:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def _jd_datetime(jd: float) -> datetime:
    return datetime(2000, 1, 1, 12, tzinfo=UTC) + timedelta(days=jd - 2451545.0)


class _AlertTemplate:
    """Copies of one real ZTF alert (an Avro container, as ZTF sends it on Kafka) that
    differ in ``candid``, ``objectId`` and position.

    fastavro's writer takes about 2 ms per 66 kB alert, too slow to produce 1,700
    alerts/s from one thread; here a copy is the template's bytes with those fields
    overwritten in place (same lengths: 9-byte candid varints, objectIds of the
    template's length, 8-byte doubles), a few microseconds. The offsets are found by
    encoding the template once with sentinel values, and a first copy is decoded back
    as a check. ``cutouts=False`` empties the three cutout stamps (~41 kB: the broker
    never reads them; see ``bench_soak``).
    """

    _CANDID = 2**56 + 987_654_321  # 9 bytes, like every candid in [2**55, 2**62)
    _RA, _DEC = 123.45678901234567, -12.345678901234567

    def __init__(self, path: Path, cutouts: bool = True) -> None:
        import io
        import struct

        import fastavro

        reader = fastavro.reader(io.BytesIO(path.read_bytes()))
        rec: Any = next(reader)
        cand = rec["candidate"]
        self.object_id = str(rec["objectId"])
        self.ra, self.dec = float(cand["ra"]), float(cand["dec"])
        self.jd, self.first_jd = float(cand["jd"]), float(cand["jdstarthist"])
        rec["candid"] = cand["candid"] = self._CANDID
        cand["ra"], cand["dec"] = self._RA, self._DEC
        sentinel_oid = "~" * len(self.object_id)
        rec["objectId"] = sentinel_oid
        if not cutouts:
            for name in CUTOUT_FIELDS:
                if rec.get(name):
                    rec[name]["stampData"] = b""
        buf = io.BytesIO()
        fastavro.writer(buf, fastavro.parse_schema(reader.writer_schema), [rec], codec="null")
        self.data = buf.getvalue()

        def where(needle: bytes, count: int) -> list[int]:
            found, at = [], self.data.find(needle)
            while at >= 0:
                found.append(at)
                at = self.data.find(needle, at + 1)
            if len(found) != count:
                raise RuntimeError(f"{path.name}: sentinel found {len(found)} times, "
                                   f"expected {count}")
            return found

        self._candid_at = where(_zigzag_varint(self._CANDID), 2)
        [self._ra_at] = where(struct.pack("<d", self._RA), 1)
        [self._dec_at] = where(struct.pack("<d", self._DEC), 1)
        [self._oid_at] = where(sentinel_oid.encode(), 1)
        self._pack = struct.Struct("<d").pack
        oid = self.object_id_for(1)
        got: Any = next(fastavro.reader(io.BytesIO(self.copy(10**17 + 1, oid, 1.5, -2.5))))
        if (got["candid"], got["candidate"]["candid"], got["objectId"], got["candidate"]["ra"],
                got["candidate"]["dec"]) != (10**17 + 1, 10**17 + 1, oid, 1.5, -2.5):
            raise RuntimeError(f"{path.name}: patched copy does not decode as written")

    def object_id_for(self, i: int) -> str:
        """A distinct objectId of the template's length for copy ``i`` (``ZTF26…``)."""
        width = len(self.object_id) - 5
        letters = []
        for _ in range(width):
            i, r = divmod(i, 26)
            letters.append(chr(97 + r))
        return "ZTF26" + "".join(reversed(letters))

    def copy(self, candid: int, object_id: str | None = None, ra: float | None = None,
             dec: float | None = None) -> bytes:
        """The template's bytes with these values (``None``: the real alert's)."""
        varint = _zigzag_varint(candid)
        if len(varint) != 9:
            raise ValueError(f"candid {candid} is not in [2**55, 2**62)")
        oid = (self.object_id if object_id is None else object_id).encode()
        if len(oid) != len(self.object_id):
            raise ValueError(f"objectId {object_id!r} is not {len(self.object_id)} bytes")
        out = bytearray(self.data)
        for at in self._candid_at:
            out[at:at + 9] = varint
        out[self._oid_at:self._oid_at + len(oid)] = oid
        out[self._ra_at:self._ra_at + 8] = self._pack(self.ra if ra is None else ra)
        out[self._dec_at:self._dec_at + 8] = self._pack(self.dec if dec is None else dec)
        return bytes(out)


def _ep_notice(ident: str, t0: datetime, ra: float, dec: float, radius: float) -> bytes:
    """An Einstein Probe WXT notice (GCN JSON): a circle of 90 % radius ``radius``."""
    return json.dumps({"$schema": EP_WXT_SCHEMA, "instrument": "WXT",
                       "trigger_time": t0.isoformat().replace("+00:00", "Z"), "id": [ident],
                       "ra": ra, "dec": dec, "ra_dec_error": radius}).encode()


def _pace(producer: Any, topic: str, make: Callable[[int], tuple[bytes, bytes]], n: int,
          rate: float, sent_at: np.ndarray, stop: threading.Event | None = None) -> int:
    """Produce ``make(i)`` for i < n at ``rate`` messages/s (catching up in bursts when
    late); ``sent_at[i]`` gets the wall time of each ``produce``. Returns messages sent."""
    start = time.time()
    i = 0
    while i < n and not (stop is not None and stop.is_set()):
        target = min(n, int((time.time() - start) * rate) + 1)
        while i < target:
            key, value = make(i)
            try:
                producer.produce(topic, value=value, key=key)
            except BufferError:  # local queue full: let librdkafka deliver, then retry
                producer.poll(0.05)
                continue
            sent_at[i] = time.time()
            i += 1
        producer.poll(0)
        pause = start + i / rate - time.time()
        if pause > 0:
            time.sleep(min(pause, 0.005))
    producer.flush(60)
    return i


class _CounterpartFollower(threading.Thread):
    """Reads counterpart topics while a benchmark runs: for each message keyed
    ``event|version|alert_id`` with ``alert_id = base + i``, the latency is the
    message's timestamp (set when the service produced it) minus ``sent_at[i]``."""

    def __init__(self, bootstrap: str, topics: list[str], sent_at: np.ndarray,
                 base: int) -> None:
        super().__init__(name="counterpart-follower", daemon=True)
        self.bootstrap, self.topics, self.sent_at, self.base = bootstrap, topics, sent_at, base
        self.stop = threading.Event()
        self.keys: set[str] = set()
        self.messages = 0
        self.latency: list[tuple[float, float]] = []  # (sent at, latency s)
        self.error: str | None = None

    def run(self) -> None:
        from confluent_kafka import Consumer

        consumer = Consumer({"bootstrap.servers": self.bootstrap,
                             "group.id": f"bench-follower-{id(self)}-{time.time_ns()}",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.subscribe(self.topics)
        try:
            while not self.stop.is_set():
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                if msg.error():
                    self.error = str(msg.error())
                    continue
                key = (msg.key() or b"").decode()
                self.messages += 1
                self.keys.add(key)
                alert_id = key.rsplit("|", 1)[-1]
                if not alert_id.isdigit():
                    continue
                i = int(alert_id) - self.base
                if 0 <= i < len(self.sent_at) and self.sent_at[i] > 0:
                    sent = float(self.sent_at[i])
                    self.latency.append((sent, msg.timestamp()[1] / 1e3 - sent))
        finally:
            consumer.close()


class _ScratchService:
    """``mm-broker run`` as a subprocess on the local services, with its own scratch
    database, alert topic, counterpart topic prefix, archive and checkpoints (under a
    work folder), so a benchmark never mixes with the broker's own data.

    ``with`` makes the database and the topics; :meth:`start` starts the service and
    waits until both streaming queries have started. On exit the service is stopped
    (SIGTERM, then its process group is killed after 60 s), the topics deleted, the
    work folder removed unless it was given, and the database dropped.
    """

    def __init__(self, settings: Settings, kind: str, trigger: str,
                 workdir: Path | None = None, env: dict[str, str] | None = None) -> None:
        import uuid

        self.settings, self.trigger, self.env = settings, trigger, dict(env or {})
        self.tag = uuid.uuid4().hex[:8]
        self.topic_in, self.prefix = f"bench.{kind}.{self.tag}", f"bench{self.tag}"
        self.keep = workdir is not None
        self.work = Path(workdir) if workdir is not None else \
            settings.state_dir / "bench" / f"{kind}-{self.tag}"
        self.bootstrap = str(settings.get("kafka.bootstrap"))
        self.log_path = settings.state_dir / "logs" / f"bench-{kind}-{self.tag}.log"
        self.proc: Any = None
        self.counts: dict[str, Any] | None = None
        self._stack: Any = None
        self.scratch: Settings = settings

    @property
    def archive(self) -> Path:
        return self.work / "archive"

    @property
    def checkpoints(self) -> Path:
        return self.work / "checkpoints"

    def query_folder(self, query: str) -> Path:
        """Checkpoint folder of ``coincidence`` or ``raw`` (the raw archive)."""
        return self.checkpoints / SERVICE_NAME / query

    def counterpart_topic(self, messenger: str = "X") -> str:
        from publishers.kafka import Topics

        return Topics(self.prefix).counterparts(messenger, "observation")

    def __enter__(self) -> _ScratchService:
        from contextlib import ExitStack

        from confluent_kafka.admin import AdminClient

        from mm_broker.core.db.scratch import temporary_database
        from publishers.config import PublishConfig
        from publishers.kafka import Topics, ensure_topics

        self._stack = ExitStack()
        try:
            self.scratch = self._stack.enter_context(temporary_database(self.settings,
                                                                        "mm_bench"))
            self.work.mkdir(parents=True, exist_ok=True)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            pub = PublishConfig.from_settings(self.settings)
            admin = AdminClient(dict(pub.kafka))
            ensure_topics(admin, [self.topic_in], int(self.settings.get("kafka.partitions")),
                          pub.replication_factor, pub.retention_ms)
            ensure_topics(admin, Topics(self.prefix).all(), pub.partitions,
                          pub.replication_factor, pub.retention_ms)
        except BaseException:
            self._cleanup()
            raise
        return self

    def ingest(self, payload: bytes) -> Any:
        """Store a notice in the scratch database, as a listener would."""
        from mm_broker.app.ingest import Limits, ingest
        from mm_broker.core.db.migrate import engine_for

        db = engine_for(self.scratch)
        try:
            result = ingest(db, payload, "bench", None, limits=Limits.from_settings(
                self.scratch))
        finally:
            db.dispose()
        if result.status != "stored":
            raise RuntimeError(f"bench notice not stored: {result.status} {result.reason}")
        return result

    def start(self, timeout: float = 240.0) -> float:
        """Start the service; return the seconds until both queries had started."""
        import subprocess
        import sys

        env = {**os.environ, "MM_POSTGRES__DATABASE": str(self.scratch.get("postgres.database")),
               "MM_ALERTS__TOPICS": json.dumps([self.topic_in]),
               "MM_PUBLISH__TOPIC_PREFIX": self.prefix, "MM_ALERTS__TRIGGER": self.trigger,
               "MM_ALERTS__ARCHIVE_URI": self.archive.as_uri(),
               "MM_ALERTS__CHECKPOINT_URI": self.checkpoints.as_uri(), **self.env}
        t0 = time.time()
        with open(self.log_path, "wb") as log_file:  # the child keeps its own descriptor
            self.proc = subprocess.Popen([sys.executable, "-m", "mm_broker.app.cli", "run"],
                                         env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        marks = [self.query_folder(q) / "metadata" for q in ("coincidence", "raw")]
        while not all(m.exists() for m in marks):
            if self.proc.poll() is not None:
                raise RuntimeError(f"mm-broker run exited ({self.proc.returncode}) before "
                                   f"its queries started; see {self.log_path}")
            if time.time() - t0 > timeout:
                raise RuntimeError(f"mm-broker run: queries not started after {timeout:.0f} s;"
                                   f" see {self.log_path}")
            time.sleep(0.5)
        return time.time() - t0

    def stop(self, timeout: float = 60.0) -> dict[str, Any] | None:
        """SIGTERM (the service finishes its micro-batch), then kill; return the counts
        the service printed, if any."""
        import signal
        import subprocess

        if self.proc is None:
            return self.counts
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        self.proc = None
        for line in reversed(self.log_path.read_text(errors="replace").splitlines()):
            if line.startswith("{"):
                try:
                    self.counts = json.loads(line)
                except ValueError:
                    continue
                break
        return self.counts

    def log_problems(self) -> dict[str, int]:
        """Lines of the service's log that tell of trouble, by kind."""
        kinds = {"java_out_of_memory": "java.lang.OutOfMemoryError",
                 "query_failed": "mm_broker.app.run: query ", "error_lines": " ERROR "}
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return {k: text.count(v) for k, v in kinds.items()}

    def _cleanup(self) -> None:
        import shutil

        from publishers.config import PublishConfig
        from publishers.kafka import Topics, delete_topics

        try:
            self.stop()
        finally:
            try:
                delete_topics(PublishConfig.from_settings(self.settings),
                              [self.topic_in, *Topics(self.prefix).all()])
            except Exception as exc:  # noqa: BLE001 - clean-up must not hide the result
                log.warning("bench: topics of %s not deleted: %s", self.tag, exc)
            if not self.keep:
                shutil.rmtree(self.work, ignore_errors=True)
            if self._stack is not None:
                self._stack.close()

    def __exit__(self, *exc: object) -> None:
        self._cleanup()


def bench_latency(settings: Settings, rate: float = 1000.0, seconds: float = 30.0,
                  ) -> dict[str, Any]:
    """Alert written to the input topic → its counterpart on the output topic, at
    ``rate`` alerts/s, through ``mm-broker run`` (a subprocess) on the local services.

    Every alert is a copy of one real ZTF alert (new candid) inside one Einstein Probe
    circle, so every alert has a counterpart."""
    import uuid

    from confluent_kafka import Producer

    template = _AlertTemplate(settings.data_dir / LATENCY_ALERT)
    t0 = _jd_datetime(template.first_jd - 60 / 86400)
    n = int(rate * seconds)
    base = 10**17 + int(uuid.uuid4().int % 10**12) * 1000
    sent_at = np.zeros(n)
    with _ScratchService(settings, "latency", "500 milliseconds") as svc:
        svc.ingest(_ep_notice(f"8{svc.tag}", t0, template.ra, template.dec, 1.0))
        producer = Producer({"bootstrap.servers": svc.bootstrap, "linger.ms": 1})
        follower = _CounterpartFollower(svc.bootstrap, [svc.counterpart_topic()], sent_at,
                                        base)
        follower.start()
        svc.start()
        _pace(producer, svc.topic_in,
              lambda i: (str(base + i).encode(), template.copy(base + i)), n, rate, sent_at)
        deadline = time.time() + 60
        while len(follower.latency) < n and time.time() < deadline:
            time.sleep(0.5)
        follower.stop.set()
        follower.join(10)
    latencies = [lat for _, lat in follower.latency]
    if not latencies:
        raise RuntimeError(f"no counterpart arrived on the output topic; see {svc.log_path}")
    stats = _percentiles(latencies)
    return {"benchmark": "latency", **machine(), "rate_per_s": rate, "alerts": n,
            "counterparts_received": len(latencies),
            "median_s": round(stats["median_ms"] / 1e3, 3),
            "p95_s": round(stats["p95_ms"] / 1e3, 3), "goal_p95_s": 5.0,
            "trigger": "500 milliseconds"}


# --------------------------------------------------------------------- soak

#: Goals of the soak (the issue): sustained rate, and resident memory growth.
SOAK_GOAL_RATE_PER_MIN = 100_000
SOAK_GOAL_RSS_GROWTH_PCT = 10.0


def _unit(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    r, d = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=-1)


def _near_any(ra: np.ndarray, dec: np.ndarray, centres: np.ndarray,
              radius_deg: np.ndarray) -> np.ndarray:
    """Which points lie within ``radius_deg[j]`` of some centre ``j`` (unit vectors)."""
    limit = np.cos(np.radians(radius_deg))
    out = np.zeros(len(ra), dtype=bool)
    for start in range(0, len(ra), 50_000):
        cos = _unit(ra[start:start + 50_000], dec[start:start + 50_000]) @ centres.T
        out[start:start + 50_000] = np.any(cos > limit, axis=1)
    return out


def _soak_sky(n_regions: int, n_alerts: int, fraction: float, seed: int,
              ) -> dict[str, np.ndarray]:
    """Circles and alert positions of the soak.

    ``n_regions`` circles (90 % radius 0.5–2°) on a Fibonacci lattice (randomly turned),
    disjoint by construction. Each alert is, with probability ``fraction``, placed
    uniformly within 0.9 radius of a random circle (``region`` = its index), otherwise
    uniformly on the sky but farther than 1.1 radius from every circle
    (``region`` = −1): no alert lies near a boundary, so whether it is a counterpart
    does not depend on how the circle is pixelised.
    """
    rng = np.random.default_rng(seed)
    k = np.arange(n_regions)
    cdec = np.degrees(np.arcsin(1 - (2 * k + 1) / n_regions))
    cra = (np.degrees(k * np.pi * (3 - np.sqrt(5))) + rng.uniform(0, 360)) % 360
    radius = rng.uniform(0.5, 2.0, n_regions)
    centres = _unit(cra, cdec)
    if n_regions > 1:
        cos = np.clip(centres @ centres.T, -1, 1)
        np.fill_diagonal(cos, -1)
        if np.any(np.degrees(np.arccos(cos)) < 1.2 * (radius[:, None] + radius[None, :])):
            raise ValueError(f"{n_regions} regions do not fit on the sky as disjoint circles")
    inside = rng.random(n_alerts) < fraction
    region = np.full(n_alerts, -1, dtype=np.int64)
    ra, dec = np.empty(n_alerts), np.empty(n_alerts)
    idx = np.flatnonzero(inside)
    j = rng.integers(0, n_regions, len(idx))
    region[idx] = j
    dist = np.radians(0.9 * radius[j] * np.sqrt(rng.random(len(idx))))
    angle = rng.uniform(0, 2 * np.pi, len(idx))
    dec1, ra1 = np.radians(cdec[j]), np.radians(cra[j])
    dec2 = np.arcsin(np.sin(dec1) * np.cos(dist) + np.cos(dec1) * np.sin(dist) * np.cos(angle))
    ra2 = ra1 + np.arctan2(np.sin(angle) * np.sin(dist) * np.cos(dec1),
                           np.cos(dist) - np.sin(dec1) * np.sin(dec2))
    ra[idx], dec[idx] = np.degrees(ra2) % 360, np.degrees(dec2)
    todo = np.flatnonzero(~inside)
    while len(todo):
        ra[todo] = rng.uniform(0, 360, len(todo))
        dec[todo] = np.degrees(np.arcsin(rng.uniform(-1, 1, len(todo))))
        todo = todo[_near_any(ra[todo], dec[todo], centres, 1.1 * radius)]
    return {"centre_ra": cra, "centre_dec": cdec, "radius": radius, "ra": ra, "dec": dec,
            "region": region}


def _in_ranges(ipix: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Which pixels fall in sorted, disjoint ``[lo, hi)`` ranges."""
    lo, hi = ranges[:, 0], ranges[:, 1]
    k = np.searchsorted(lo, ipix, side="right") - 1
    return (k >= 0) & (ipix < hi[np.clip(k, 0, None)])


def _process_tree(root: int) -> list[int]:
    """``root`` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def _proc_usage(pid: int) -> tuple[float, int, bytes] | None:
    """(RSS MiB, CPU ticks (user + system), command line) of a live process."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return None
    rss_kb = next((int(line.split()[1]) for line in status.splitlines()
                   if line.startswith("VmRSS:")), 0)
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return rss_kb / 1024, ticks, cmdline


def _service_usage(root: int) -> tuple[dict[str, float], dict[int, tuple[str, int]]]:
    """Resident memory (MiB) of the service's process tree by role, and the CPU ticks of
    each of its processes (pid → (role, ticks)). Roles: ``driver`` (the ``mm-broker
    run`` Python process: join, store, publication), ``jvm`` (Spark's driver JVM that
    pyspark starts: Kafka source, raw archive, scheduling), ``python_workers`` (the
    pyspark daemon and its workers, children of the JVM: Avro decoding and enrichment in
    ``mapInPandas``), ``other``. The RSS dict also has ``total`` and ``processes``."""
    rss = dict.fromkeys(("driver", "jvm", "python_workers", "other"), 0.0)
    ticks: dict[int, tuple[str, int]] = {}
    for pid in _process_tree(root):
        got = _proc_usage(pid)
        if got is None:
            continue
        mib, t, cmd = got
        role = ("driver" if pid == root else "jvm" if b"java" in cmd.split(b"\0")[0]
                else "python_workers" if b"pyspark" in cmd else "other")
        rss[role] += mib
        ticks[pid] = (role, t)
    return ({**{k: round(v, 1) for k, v in rss.items()},
             "total": round(sum(rss.values()), 1), "processes": len(ticks)}, ticks)


def _cpu_by_role(window: list[dict[int, tuple[str, int]]]) -> dict[str, int]:
    """CPU ticks spent by role between the first and the last of these samples of
    per-process ticks: for each process, its last value seen minus its value in the
    first sample (0 if it started later). A process that ended between two samples
    loses at most one sampling interval."""
    first, last = window[0], {}
    for per_pid in window:
        last.update(per_pid)
    out: dict[str, int] = {"total": 0}
    for pid, (role, ticks) in last.items():
        spent = ticks - (first[pid][1] if pid in first else 0)
        out[role] = out.get(role, 0) + spent
        out["total"] += spent
    return out


def _batch_log(path: Path, t_start: float) -> list[tuple[float, int]]:
    """(seconds since ``t_start``, alerts) of each micro-batch the service logged."""
    import re

    line = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) INFO mm_broker\.run: "
                      r"batch \d+: (\d+) alerts")
    out = []
    for text in path.read_text(errors="replace").splitlines():
        m = line.match(text)
        if m:
            at = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
            out.append((round(at + int(m.group(2)) / 1e3 - t_start, 1), int(m.group(3))))
    return out


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the machine since boot (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


def _checkpoint_offsets(folder: Path, topic: str) -> dict[int, int]:
    """Next offset per partition after the last micro-batch the query *committed*:
    ``offsets/<id>`` (what the batch read up to, written before it runs) of the highest
    ``<id>`` in ``commits/`` (written once the batch, publication included, is done)."""
    try:
        done = [int(p.name) for p in (folder / "commits").iterdir() if p.name.isdigit()]
        if not done:
            return {}
        text = (folder / "offsets" / str(max(done))).read_text()
    except FileNotFoundError:
        return {}
    parts = json.loads(text.strip().splitlines()[-1]).get(topic, {})
    return {int(p): int(o) for p, o in parts.items()}


def bench_soak(settings: Settings, rate_per_min: float = SOAK_GOAL_RATE_PER_MIN,
               minutes: float = 10.0, regions: int = 100, match_fraction: float = 0.02,
               cutouts: int = 0, warmup_s: float = 60.0, sample_s: float = 10.0,
               trigger_s: float = 2.0, voevents: int = 1, min_free_gb: float = 8.0,
               drain_timeout_s: float = 300.0, stall_timeout_s: float = 300.0,
               max_offsets: int = 0, seed: int = 1,
               workdir: Path | None = None) -> dict[str, Any]:
    """Sustained load through the whole chain: ``rate_per_min`` alerts for ``minutes``
    into Kafka → ``mm-broker run`` (Spark decoding and enrichment, the join against
    ``regions`` active regions on the driver, the associations table) → the counterpart
    topic and VOEvents through Comet.

    Set-up (nothing mixes with the broker's own data): a scratch database, a unique
    alert topic and counterpart topic prefix (deleted afterwards), archive and
    checkpoints in a work folder (removed afterwards unless ``workdir`` is given, which
    tests use to read the archive and the notices). ``regions`` Einstein Probe WXT
    notices (GCN JSON circles, 0.5–2°, see :func:`_soak_sky`) are stored through the
    real :func:`~mm_broker.app.ingest.ingest`, with trigger times 60 s to ~17 min before
    the alerts' first detection, so every alert is in time for every region.

    Alerts: copies of one real ZTF alert (:data:`LATENCY_ALERT`) with a unique candid,
    a unique objectId and a new position (:class:`_AlertTemplate`); ``match_fraction``
    of them are placed inside a region (counterparts), the others away from all
    regions. ``cutouts=0`` (default) empties the three cutout stamps: the broker never
    reads them, and with them (66 kB per alert) 100,000 alerts/min put ~110 MB/s into
    Kafka and as much into the raw archive, ~130 GB in 10 minutes, more than the disk
    of a development machine; ``cutouts=1`` sends the full alerts (short runs). A
    producer thread sends them at the rate (the time of each ``produce`` recorded)
    once the service's two streaming queries have started (``service_start_s``). The
    run stops sending early if the disk holding the state has less than
    ``min_free_gb`` free, if the service exits, or if it stalls (no micro-batch
    committed for ``stall_timeout_s`` while alerts wait) (``stopped_early``;
    ``service_log`` counts the log's errors). ``max_offsets`` (0: the configuration's
    ``alerts.max_offsets_per_trigger``) caps the alerts of one micro-batch.

    Measured every ``sample_s`` (t = seconds since the first alert was sent), until the
    backlog is drained (at most ``max(drain_timeout_s, duration)`` after sending):

    * lag: the alert topic's end offsets minus the offsets the ``coincidence`` query
      has committed in its checkpoint (:func:`_checkpoint_offsets`): alerts in Kafka
      not yet through decoding, join *and* publication. Spark does not commit offsets
      to Kafka, so a consumer group's lag would say nothing. ``raw_lag_final`` is the
      raw archive query's.
    * resident memory of the service's process tree from /proc (Python driver, Spark's
      JVM, the pyspark workers; :func:`_service_usage`). ``rss_start_mb`` is the median
      of the samples in the first ``min(60 s, duration / 5)`` after the warm-up
      (``min(warmup_s, duration / 5)`` after the first alert: JVM heap, Python workers
      and caches have grown to their working size), ``rss_end_mb`` the median over as
      long up to the sample taken once the backlog is drained, before the service is
      stopped: the JVM's resident size swings by a GB or more with its garbage
      collections, so single samples would mostly measure where a cycle was.
      ``rss_samples`` has every sample, by role.
    * throughput: ``processed_per_s`` = alerts committed by the coincidence query from
      the end of the warm-up until the backlog was drained, per second. When the
      service keeps up this is the sending rate; when it falls behind (lag growing),
      its capacity on this machine.
    * CPU over the steady window (warm-up → end of sending), in cores: the service by
      role, the Kafka broker, this process (the producer), the whole machine and what
      is left for other processes (PostgreSQL, Comet, anything else running).

    Latency: for each counterpart on the topic, its message timestamp (set when the
    service produced it) minus the time its alert was produced; p50/p95 over alerts
    sent after the warm-up (``latency_all_*``: all of them).

    Counterparts: ``expected`` is computed with numpy from the positions and the
    order-29 ranges of the stored regions; ``received_on_topic`` (distinct keys),
    ``stored`` (rows of the associations table) and ``voevents_received`` (VOEvents a
    Comet subscriber received that name our events; one per event version and
    micro-batch, up to 20 candidates each) are what the chain did.

    Goals are reported, not asserted: ``met.throughput`` (``processed_per_min`` ≥ 98 %
    of 100,000), ``met.rate_sent`` (the producer held the goal rate),
    ``met.rss_growth`` (< 10 %; ``None`` when the service exited, stalled, or logged an
    ``OutOfMemoryError`` or a failed query: its memory then says nothing about a
    leak), ``met.drained`` (final lag 0).
    """
    import shutil
    import uuid

    import healpy as hp
    from confluent_kafka import Consumer, Producer, TopicPartition
    from sqlalchemy import func

    from mm_broker.core.db.migrate import engine_for
    from mm_broker.core.db.schema import associations

    rate = rate_per_min / 60.0
    duration = minutes * 60.0
    n = int(round(rate * duration))
    regions = int(regions)
    warm = min(warmup_s, duration / 5)
    drain = max(drain_timeout_s, duration)
    template = _AlertTemplate(settings.data_dir / LATENCY_ALERT, cutouts=bool(cutouts))
    alert_bytes = len(template.data)
    sky = _soak_sky(regions, n, match_fraction, int(seed))
    ipix = hp.ang2pix(2**29, sky["ra"], sky["dec"], nest=True, lonlat=True).astype(np.uint64)
    base = 10**17 + int(uuid.uuid4().int % 10**11) * 10**6
    sent_at = np.zeros(n)
    clk = os.sysconf("SC_CLK_TCK")
    kafka_pid_file = settings.state_dir / "run" / "kafka.pid"
    kafka_pid = int(kafka_pid_file.read_text().strip()) if kafka_pid_file.exists() else None

    def make(i: int) -> tuple[bytes, bytes]:
        candid = base + i
        return str(candid).encode(), template.copy(candid, template.object_id_for(i),
                                                   float(sky["ra"][i]), float(sky["dec"][i]))

    out: dict[str, Any] = {"benchmark": "soak", **machine()}
    trigger = f"{int(round(trigger_s * 1000))} milliseconds"
    env = {"MM_ALERTS__MAX_OFFSETS_PER_TRIGGER": str(int(max_offsets))} if max_offsets else {}
    with _ScratchService(settings, "soak", trigger, workdir, env) as svc:
        notices = svc.work / "notices"
        notices.mkdir(parents=True, exist_ok=True)
        expected_per_alert = np.zeros(n, dtype=np.int64)
        for k in range(regions):
            t0 = _jd_datetime(template.first_jd - (60 + 10 * k) / 86400)
            payload = _ep_notice(f"{svc.tag}{k:03d}", t0, float(sky["centre_ra"][k]),
                                 float(sky["centre_dec"][k]), float(sky["radius"][k]))
            (notices / f"{k:03d}.json").write_bytes(payload)
            expected_per_alert += _in_ranges(ipix, svc.ingest(payload).region.ranges)
        follower = _CounterpartFollower(svc.bootstrap, [svc.counterpart_topic()], sent_at,
                                        base)
        follower.start()
        subscriber = _comet_subscriber(settings, svc.work, svc.tag) if voevents else None
        consumer = Consumer({"bootstrap.servers": svc.bootstrap,
                             "group.id": f"bench-soak-lag-{svc.tag}"})
        partitions = sorted(consumer.list_topics(svc.topic_in, timeout=10)
                            .topics[svc.topic_in].partitions)
        stop_sending = threading.Event()
        samples: list[dict[str, Any]] = []
        t_start = time.time()

        def offsets() -> tuple[int, int, int]:
            """(end, processed by the coincidence query, by the raw archive query)."""
            ends = [consumer.get_watermark_offsets(TopicPartition(svc.topic_in, p),
                                                   timeout=10)[1] for p in partitions]
            done = _checkpoint_offsets(svc.query_folder("coincidence"), svc.topic_in)
            raw = _checkpoint_offsets(svc.query_folder("raw"), svc.topic_in)
            return (sum(ends), sum(done.get(p, 0) for p in partitions),
                    sum(raw.get(p, 0) for p in partitions))

        def sample() -> dict[str, Any]:
            end, processed, raw = offsets()
            kafka = _proc_usage(kafka_pid) if kafka_pid else None
            rss, ticks = _service_usage(svc.proc.pid)
            s = {"t": round(time.time() - t_start, 1), "end": end, "processed": processed,
                 "lag": end - processed, "raw": raw, "rss": rss, "ticks": ticks,
                 "machine": _machine_ticks(), "kafka_ticks": kafka[1] if kafka else 0,
                 "bench_s": sum(os.times()[:2]), "load": round(os.getloadavg()[0], 2),
                 "free_gb": round(shutil.disk_usage(settings.state_dir).free / 1e9, 1)}
            samples.append(s)
            return s

        try:
            start_s = svc.start()
            producer = Producer({"bootstrap.servers": svc.bootstrap, "linger.ms": 5,
                                 "compression.type": "lz4", "enable.idempotence": True})
            sent_box: list[int] = []
            sender = threading.Thread(
                target=lambda: sent_box.append(_pace(producer, svc.topic_in, make, n, rate,
                                                     sent_at, stop_sending)),
                name="soak-producer", daemon=True)
            free_start = shutil.disk_usage(settings.state_dir).free
            t_start = time.time()
            sender.start()
            stopped_early: str | None = None
            unhealthy = False  # the service exited, stalled: its memory says little
            end_of_sending: dict[str, Any] | None = None
            next_sample = 0.0
            progress = (0, time.time())  # (processed, when it last moved)
            while True:
                elapsed = time.time() - t_start
                if elapsed >= next_sample:
                    last = sample()
                    next_sample += sample_s
                    if last["free_gb"] < min_free_gb and not stop_sending.is_set():
                        stopped_early = f"disk: {last['free_gb']} GB free < {min_free_gb} GB"
                        stop_sending.set()
                    if last["processed"] != progress[0] or last["lag"] == 0:
                        progress = (last["processed"], time.time())
                    elif time.time() - progress[1] > stall_timeout_s:
                        stopped_early = (f"service stalled: no micro-batch committed for "
                                         f"{stall_timeout_s:.0f} s with {last['lag']} alerts "
                                         f"waiting; see {svc.log_path}")
                        unhealthy = True
                        stop_sending.set()
                        break
                if svc.proc.poll() is not None:
                    stopped_early = f"service exited ({svc.proc.returncode}); see {svc.log_path}"
                    unhealthy = True
                    stop_sending.set()
                    break
                if end_of_sending is None and not sender.is_alive():
                    end_of_sending = sample()
                if end_of_sending is not None:
                    end, processed, _ = offsets()
                    if end == processed:
                        break
                    if elapsed - end_of_sending["t"] > drain:
                        idle = time.time() - progress[1]
                        stopped_early = (f"backlog of {end - processed} alerts not drained "
                                         f"{drain:.0f} s after the end of sending; last "
                                         f"micro-batch committed {idle:.0f} s ago")
                        unhealthy = idle > stall_timeout_s
                        break
                time.sleep(max(0.0, min(1.0, next_sample - (time.time() - t_start))))
            final = sample()  # drained (or given up): the end of the measurement
            sender.join(70)
            n_sent = sent_box[0] if sent_box else int(np.count_nonzero(sent_at))
            expected = int(expected_per_alert[:n_sent].sum())
            deadline = time.time() + 30
            while len(follower.keys) < expected and time.time() < deadline:
                time.sleep(0.5)
        finally:
            stop_sending.set()
            consumer.close()
            follower.stop.set()
            follower.join(10)
            counts = svc.stop()
            if subscriber is not None:
                time.sleep(3)  # Comet relays the last VOEvents it received
                _stop_process(subscriber)
        db = engine_for(svc.scratch)
        try:
            with db.connect() as conn:
                stored = int(conn.execute(select(func.count()).select_from(associations))
                             .scalar_one())
        finally:
            db.dispose()
        voevents_received = None
        if subscriber is not None:
            needle = svc.tag.encode()
            voevents_received = sum(1 for p in (svc.work / "voevents").iterdir()
                                    if p.is_file() and needle in p.read_bytes())
        batches = [b for b in _batch_log(svc.log_path, t_start) if b[0] >= warm]
        problems = svc.log_problems()
        unhealthy = unhealthy or problems["java_out_of_memory"] > 0 or problems[
            "query_failed"] > 0

    # ---- figures
    # Windows (sample indices): from the first sample after the warm-up to the drained
    # sample, or, if the backlog was not drained, to the first sample showing the last
    # micro-batch committed; the steady window (CPU) also ends with the sending.
    a = next((k for k, x in enumerate(samples) if x["t"] >= warm), 0)
    z = len(samples) - 1
    if final["lag"] != 0:
        z = next(k for k, x in enumerate(samples) if x["processed"] == final["processed"])
    z = max(a, z)
    e = z if end_of_sending is None else max(a, min(z, samples.index(end_of_sending)))
    steady_from, steady_to = samples[a], samples[e]
    span = max(1e-9, steady_to["t"] - steady_from["t"])
    busy, total = (q - p for p, q in zip(steady_from["machine"], steady_to["machine"],
                                         strict=True))
    ncpu = os.cpu_count() or 1
    # RSS at start and end: medians over a window (the JVM's heap breathes by a GB or
    # more between two samples, so one sample would say little)
    rw = min(60.0, duration / 5)
    roles = ("total", "driver", "jvm", "python_workers")
    windows = {"start": [x for x in samples
                         if steady_from["t"] <= x["t"] <= steady_from["t"] + rw],
               "end": [x for x in samples if x["t"] >= final["t"] - rw]}
    rss = {w: {r: round(float(np.median([x["rss"][r] for x in win])), 1) for r in roles}
           for w, win in windows.items()}

    def growth(role: str) -> float | None:
        first = rss["start"][role]
        return round((rss["end"][role] - first) / first * 100, 1) if first else None

    # from the first produce to the last one, plus one interval
    send_s = round(float(sent_at[n_sent - 1]) - t_start + 1 / rate, 1) if n_sent else 0.0
    processed_per_s = ((samples[z]["processed"] - steady_from["processed"])
                       / max(1e-9, samples[z]["t"] - steady_from["t"]))
    after_warm = [lat for sent, lat in follower.latency if sent >= t_start + warm]
    all_lat = [lat for _, lat in follower.latency]
    spent = _cpu_by_role([x["ticks"] for x in samples[a:e + 1]])
    cpu = {f"service_{role}_cores": round(spent.get(role, 0) / clk / span, 2)
           for role in ("total", "driver", "jvm", "python_workers")}
    cpu["kafka_cores"] = round((steady_to["kafka_ticks"] - steady_from["kafka_ticks"])
                               / clk / span, 2)
    cpu["bench_producer_cores"] = round((steady_to["bench_s"] - steady_from["bench_s"]) / span,
                                        2)
    cpu["machine_busy_cores"] = round(ncpu * busy / max(total, 1), 2)
    cpu["other_processes_cores"] = round(cpu["machine_busy_cores"] - cpu["service_total_cores"]
                                         - cpu["kafka_cores"] - cpu["bench_producer_cores"], 2)
    cpu["loadavg_1min_max"] = max(x["load"] for x in samples)
    gaps = np.diff([b[0] for b in batches]) if len(batches) > 1 else np.zeros(0)

    out.update({
        "params": {"rate_per_min": rate_per_min, "minutes": minutes, "regions": regions,
                   "match_fraction": match_fraction, "cutouts": bool(cutouts),
                   "warmup_s": warm, "sample_s": sample_s, "trigger": trigger,
                   "max_offsets_per_trigger": int(max_offsets) or int(
                       settings.get("alerts.max_offsets_per_trigger")), "seed": seed},
        "chain": "Kafka -> mm-broker run (Spark decode + enrichment, join on the driver, "
                 "associations table) -> Kafka counterpart topic + VOEvents through Comet",
        "spark_master": str(settings.get("spark.master")),
        "alert_template": LATENCY_ALERT, "alert_bytes": alert_bytes,
        "service_start_s": round(start_s, 1),
        "rate_asked_per_min": rate_per_min, "alerts_planned": n, "sent": n_sent,
        "send_seconds": send_s,
        "rate_achieved_per_s": round(n_sent / max(send_s, 1e-9), 1),
        "rate_achieved_per_min": round(n_sent / max(send_s, 1e-9) * 60, 1),
        "processed": final["processed"],
        "processed_by_service": None if counts is None else counts.get("alerts"),
        "processed_per_s": round(processed_per_s, 1),
        "processed_per_min": round(processed_per_s * 60, 1),
        "processed_window_s": [steady_from["t"], samples[z]["t"]],
        "drain_s": None if end_of_sending is None or final["lag"] != 0
        else round(final["t"] - end_of_sending["t"], 1),
        "batches_after_warmup": {
            "count": len(batches), "alerts_max": max((b[1] for b in batches), default=0),
            "alerts_mean": round(float(np.mean([b[1] for b in batches])), 1) if batches
            else 0.0, "interval_s_mean": round(float(gaps.mean()), 2) if len(gaps) else None,
            "interval_s_max": round(float(gaps.max()), 2) if len(gaps) else None,
            # each batch's alerts over the time since the previous one completed
            "alerts_per_s": round(sum(b[1] for b in batches[1:]) / float(gaps.sum()), 1)
            if len(gaps) and gaps.sum() > 0 else None},
        "regions": regions,
        "counterparts": {"fraction_asked": match_fraction,
                         "fraction": round(expected / max(n_sent, 1), 4),
                         "expected": expected, "received_on_topic": len(follower.keys),
                         "messages_on_topic": follower.messages, "stored": stored,
                         "published_by_service": None if counts is None
                         else counts.get("published"),
                         "voevents_received": voevents_received},
        **_latency_figures("latency", after_warm),
        **_latency_figures("latency_all", all_lat),
        "lag_definition": "alert topic end offsets minus the offsets of the last "
                          "micro-batch the coincidence query committed (its checkpoint)",
        "lag_samples": [[x["t"], x["lag"]] for x in samples],
        "lag_max": max(s["lag"] for s in samples),
        "lag_at_end_of_sending": steady_to["lag"], "lag_final": final["lag"],
        "raw_lag_final": final["end"] - final["raw"],
        "rss_samples_columns": ["t_s", "total_mb", "driver_mb", "jvm_mb", "python_workers_mb"],
        "rss_samples": [[x["t"], x["rss"]["total"], x["rss"]["driver"], x["rss"]["jvm"],
                         x["rss"]["python_workers"]] for x in samples],
        "rss_definition": "median of the samples in the first min(60 s, duration/5) after "
                          "the warm-up (start) and in the same length up to the drained "
                          "sample (end)",
        "rss_start_window_s": [windows["start"][0]["t"], windows["start"][-1]["t"]],
        "rss_end_window_s": [windows["end"][0]["t"], windows["end"][-1]["t"]],
        "rss_start_mb": rss["start"]["total"], "rss_end_mb": rss["end"]["total"],
        "rss_growth_pct": growth("total"),
        "rss_start_by_process_mb": {r: rss["start"][r] for r in roles[1:]},
        "rss_end_by_process_mb": {r: rss["end"][r] for r in roles[1:]},
        "rss_growth_by_process_pct": {r: growth(r) for r in roles[1:]},
        "cpu_steady_window_s": [steady_from["t"], steady_to["t"]], "cpu_steady": cpu,
        "disk_free_gb_start": round(free_start / 1e9, 1),
        "disk_free_gb_min": min(s["free_gb"] for s in samples),
        "service_counts": counts, "service_log": {"path": str(svc.log_path), **problems},
        "stopped_early": stopped_early,
        "goal_rate_per_min": SOAK_GOAL_RATE_PER_MIN,
        "goal_rss_growth_pct_max": SOAK_GOAL_RSS_GROWTH_PCT,
    })
    out["met"] = {
        "rate_sent": out["rate_achieved_per_min"] >= 0.98 * SOAK_GOAL_RATE_PER_MIN,
        "throughput": out["processed_per_min"] >= 0.98 * SOAK_GOAL_RATE_PER_MIN,
        "rss_growth": None if unhealthy or out["rss_growth_pct"] is None
        else out["rss_growth_pct"] < SOAK_GOAL_RSS_GROWTH_PCT,
        "drained": final["lag"] == 0}
    return out


def _latency_figures(name: str, samples: list[float]) -> dict[str, Any]:
    if not samples:
        return {f"{name}_p50_s": None, f"{name}_p95_s": None, f"{name}_n": 0}
    stats = _percentiles(samples)
    return {f"{name}_p50_s": round(stats["median_ms"] / 1e3, 3),
            f"{name}_p95_s": round(stats["p95_ms"] / 1e3, 3),
            f"{name}_max_s": round(max(samples), 3), f"{name}_n": len(samples)}


def _comet_subscriber(settings: Settings, work: Path, tag: str) -> Any:
    """A real Comet subscriber of the local broker saving the VOEvents it receives in
    ``work/voevents`` (as a user's VTP client would)."""
    import subprocess
    import sys

    for name in ("voevents", "comet-db"):
        (work / name).mkdir(exist_ok=True)
    comet = settings.tree["comet"]
    with open(work / "comet-subscriber.log", "wb") as log_file:  # the child keeps its own
        return subprocess.Popen(
            [sys.executable, "-m", "mm_broker.app.services.comet_launcher", "--bind", "127.0.0.1",
             "--", "-n", "--pidfile=", "comet",
             f"--remote={comet['host']}:{comet['broadcast_port']}",
             f"--local-ivo=ivo://mm-broker.bench/soak-{tag}", f"--eventdb={work / 'comet-db'}",
             "--save-event", f"--save-event-directory={work / 'voevents'}"],
            cwd=work, stdout=log_file, stderr=subprocess.STDOUT)


def _stop_process(proc: Any, timeout: float = 20.0) -> None:
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def registry() -> dict[str, Callable[..., dict[str, Any]]]:
    """Benchmark name → function. Names follow ARCHITECTURE.md."""
    table: dict[str, Callable[..., dict[str, Any]]] = {
        "notices": bench_notices, "pipeline": bench_pipeline, "join": bench_join,
        "publish": bench_publish, "retro": bench_retro, "latency": bench_latency,
        "soak": bench_soak}
    return table
