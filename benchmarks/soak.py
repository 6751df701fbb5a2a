"""``mm-broker bench soak``: sustained load through the whole chain.

Rewritten copies of a real ZTF alert at a fixed rate into Kafka → ``mm-broker run``
(a subprocess on scratch resources) → the counterpart topic and VOEvents through
Comet, against circles stored through the real ingest; throughput, lag, latency, RSS
and CPU over time. :func:`bench_soak` documents every figure;
``benchmarks/README.md`` summarises them. The run is three steps: set-up
(:func:`_store_regions`), the measuring loop (:func:`_drive`, sampling with
:class:`_Sampler`), and the figures (:mod:`benchmarks.soak_figures`).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import healpy as hp
import numpy as np
from confluent_kafka import Consumer, Producer, TopicPartition
from sqlalchemy import func, select

from benchmarks.alert_stream import (
    LATENCY_ALERT,
    AlertTemplate,
    CounterpartFollower,
    ep_notice,
    jd_datetime,
    pace,
)
from benchmarks.common import latency_figures, machine
from benchmarks.procstat import machine_ticks, proc_usage, service_usage
from benchmarks.scratch_service import (
    ScratchService,
    batch_log,
    checkpoint_offsets,
    comet_subscriber,
    stop_process,
)
from benchmarks.soak_figures import batch_figures, window_figures
from benchmarks.soak_sky import in_ranges, soak_sky
from mm_broker.core.config import Settings
from mm_broker.core.db.migrate import engine_for
from mm_broker.core.db.schema import associations

#: Goals of the soak (the issue): sustained rate, and resident memory growth.
SOAK_GOAL_RATE_PER_MIN = 100_000
SOAK_GOAL_RSS_GROWTH_PCT = 10.0


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
    notices (GCN JSON circles, 0.5–2°, see :func:`soak_sky`) are stored through the
    real :func:`~mm_broker.app.ingest.ingest`, with trigger times 60 s to ~17 min before
    the alerts' first detection, so every alert is in time for every region.

    Alerts: copies of one real ZTF alert (:data:`LATENCY_ALERT`) with a unique candid,
    a unique objectId and a new position (:class:`AlertTemplate`); ``match_fraction``
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
      has committed in its checkpoint (:func:`checkpoint_offsets`): alerts in Kafka
      not yet through decoding, join *and* publication. Spark does not commit offsets
      to Kafka, so a consumer group's lag would say nothing. ``raw_lag_final`` is the
      raw archive query's.
    * resident memory of the service's process tree from /proc (Python driver, Spark's
      JVM, the pyspark workers; :func:`service_usage`). ``rss_start_mb`` is the median
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

    Parameters
    ----------
    settings : Settings
        Configuration of the local services.
    rate_per_min, minutes, regions, match_fraction, cutouts, warmup_s, sample_s : number
        As described above; units and defaults in :data:`benchmarks.registry.BENCHMARKS`.
    trigger_s, voevents, min_free_gb, drain_timeout_s, stall_timeout_s, max_offsets : number
        Likewise.
    seed : int
        Seed of the sky and the positions.
    workdir : Path, optional
        Work folder kept afterwards (``notices/``, ``archive/``); default a temporary one.

    Returns
    -------
    dict
        One JSON-serialisable object of figures (``benchmarks/README.md``).
    """
    rate = rate_per_min / 60.0
    duration = minutes * 60.0
    n = int(round(rate * duration))
    regions = int(regions)
    warm = min(warmup_s, duration / 5)
    template = AlertTemplate(settings.data_dir / LATENCY_ALERT, cutouts=bool(cutouts))
    sky = soak_sky(regions, n, match_fraction, int(seed))
    base = 10**17 + int(uuid.uuid4().int % 10**11) * 10**6
    sent_at = np.zeros(n)

    def make(i: int) -> tuple[bytes, bytes]:
        candid = base + i
        return str(candid).encode(), template.copy(candid, template.object_id_for(i),
                                                   float(sky["ra"][i]), float(sky["dec"][i]))

    out: dict[str, Any] = {"benchmark": "soak", **machine()}
    trigger = f"{int(round(trigger_s * 1000))} milliseconds"
    env = {"MM_ALERTS__MAX_OFFSETS_PER_TRIGGER": str(int(max_offsets))} if max_offsets else {}
    with ScratchService(settings, "soak", trigger, workdir, env) as svc:
        expected_per_alert = _store_regions(svc, sky, template)
        follower = CounterpartFollower(svc.bootstrap, [svc.counterpart_topic()], sent_at,
                                       base)
        follower.start()
        subscriber = comet_subscriber(settings, svc.work, svc.tag) if voevents else None
        sampler = _Sampler(svc, settings.state_dir)
        stop_sending = threading.Event()
        try:
            start_s = svc.start()
            producer = Producer({"bootstrap.servers": svc.bootstrap, "linger.ms": 5,
                                 "compression.type": "lz4", "enable.idempotence": True})
            sent_box: list[int] = []
            sender = threading.Thread(
                target=lambda: sent_box.append(pace(producer, svc.topic_in, make, n, rate,
                                                    sent_at, stop_sending)),
                name="soak-producer", daemon=True)
            free_start = shutil.disk_usage(settings.state_dir).free
            sampler.t_start = time.time()
            sender.start()
            outcome = _drive(svc, sampler, sender, stop_sending, sample_s=sample_s,
                             min_free_gb=min_free_gb, stall_timeout_s=stall_timeout_s,
                             drain_s=max(drain_timeout_s, duration))
            sender.join(70)
            n_sent = sent_box[0] if sent_box else int(np.count_nonzero(sent_at))
            expected = int(expected_per_alert[:n_sent].sum())
            deadline = time.time() + 30
            while len(follower.keys) < expected and time.time() < deadline:
                time.sleep(0.5)
        finally:
            stop_sending.set()
            sampler.close()
            follower.stop.set()
            follower.join(10)
            counts = svc.stop()
            if subscriber is not None:
                time.sleep(3)  # Comet relays the last VOEvents it received
                stop_process(subscriber)
        stored = _stored_associations(svc)
        voevents_received = None
        if subscriber is not None:
            needle = svc.tag.encode()
            voevents_received = sum(1 for p in (svc.work / "voevents").iterdir()
                                    if p.is_file() and needle in p.read_bytes())
        t_start = sampler.t_start
        batches = [b for b in batch_log(svc.log_path, t_start) if b[0] >= warm]
        problems = svc.log_problems()
        unhealthy = outcome.unhealthy or problems["java_out_of_memory"] > 0 or problems[
            "query_failed"] > 0

    samples, final = sampler.samples, outcome.final
    window = window_figures(samples, final, outcome.end_of_sending, warm, duration)
    # from the first produce to the last one, plus one interval
    send_s = round(float(sent_at[n_sent - 1]) - t_start + 1 / rate, 1) if n_sent else 0.0
    after_warm = [lat for sent, lat in follower.latency if sent >= t_start + warm]
    all_lat = [lat for _, lat in follower.latency]
    out.update({
        "params": {"rate_per_min": rate_per_min, "minutes": minutes, "regions": regions,
                   "match_fraction": match_fraction, "cutouts": bool(cutouts),
                   "warmup_s": warm, "sample_s": sample_s, "trigger": trigger,
                   "max_offsets_per_trigger": int(max_offsets) or int(
                       settings.alerts.max_offsets_per_trigger), "seed": seed},
        "chain": "Kafka -> mm-broker run (Spark decode + enrichment, join on the driver, "
                 "associations table) -> Kafka counterpart topic + VOEvents through Comet",
        "spark_master": settings.spark.master,
        "alert_template": LATENCY_ALERT, "alert_bytes": len(template.data),
        "service_start_s": round(start_s, 1),
        "rate_asked_per_min": rate_per_min, "alerts_planned": n, "sent": n_sent,
        "send_seconds": send_s,
        "rate_achieved_per_s": round(n_sent / max(send_s, 1e-9), 1),
        "rate_achieved_per_min": round(n_sent / max(send_s, 1e-9) * 60, 1),
        "processed": final["processed"],
        "processed_by_service": None if counts is None else counts.get("alerts"),
        "processed_per_s": window.pop("processed_per_s"),
        "processed_per_min": window.pop("processed_per_min"),
        "processed_window_s": window.pop("processed_window_s"),
        "drain_s": None if outcome.end_of_sending is None or final["lag"] != 0
        else round(final["t"] - outcome.end_of_sending["t"], 1),
        "batches_after_warmup": batch_figures(batches),
        "regions": regions,
        "counterparts": {"fraction_asked": match_fraction,
                         "fraction": round(expected / max(n_sent, 1), 4),
                         "expected": expected, "received_on_topic": len(follower.keys),
                         "messages_on_topic": follower.messages, "stored": stored,
                         "published_by_service": None if counts is None
                         else counts.get("published"),
                         "voevents_received": voevents_received},
        **latency_figures("latency", after_warm),
        **latency_figures("latency_all", all_lat),
        **window,
        "disk_free_gb_start": round(free_start / 1e9, 1),
        "disk_free_gb_min": min(s["free_gb"] for s in samples),
        "service_counts": counts, "service_log": {"path": str(svc.log_path), **problems},
        "stopped_early": outcome.stopped_early,
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


def _store_regions(svc: ScratchService, sky: dict[str, np.ndarray],
                   template: AlertTemplate) -> np.ndarray:
    """Store one Einstein Probe circle per region of ``sky`` through the real ingest
    (the notices also written to ``work/notices``); return, per alert, how many stored
    regions contain it (from their order-29 ranges)."""
    notices = svc.work / "notices"
    notices.mkdir(parents=True, exist_ok=True)
    ipix = hp.ang2pix(2**29, sky["ra"], sky["dec"], nest=True, lonlat=True).astype(np.int64)
    expected_per_alert = np.zeros(len(ipix), dtype=np.int64)
    for k in range(len(sky["radius"])):
        t0 = jd_datetime(template.first_jd - (60 + 10 * k) / 86400)
        payload = ep_notice(f"{svc.tag}{k:03d}", t0, float(sky["centre_ra"][k]),
                            float(sky["centre_dec"][k]), float(sky["radius"][k]))
        (notices / f"{k:03d}.json").write_bytes(payload)
        region = svc.ingest(payload).region
        assert region is not None  # a stored circle has its region
        expected_per_alert += in_ranges(ipix, region.ranges)
    return expected_per_alert


def _stored_associations(svc: ScratchService) -> int:
    """Rows of the associations table of the service's scratch database."""
    db = engine_for(svc.scratch)
    try:
        with db.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(associations))
                       .scalar_one())
    finally:
        db.dispose()


class _Sampler:
    """Samples of the running service: offsets (end of the alert topic, committed by
    the coincidence and the raw archive queries), RSS and CPU ticks of its process
    tree and of the Kafka broker, the machine's ticks and load, free disk.

    ``t`` of a sample is seconds since :attr:`t_start` (set when sending starts).
    """

    def __init__(self, svc: ScratchService, state_dir: Path) -> None:
        self.svc, self.state_dir = svc, state_dir
        self.consumer = Consumer({"bootstrap.servers": svc.bootstrap,
                                  "group.id": f"bench-soak-lag-{svc.tag}"})
        self.partitions = sorted(self.consumer.list_topics(svc.topic_in, timeout=10)
                                 .topics[svc.topic_in].partitions)
        pid_file = state_dir / "run" / "kafka.pid"
        self.kafka_pid = int(pid_file.read_text().strip()) if pid_file.exists() else None
        self.samples: list[dict[str, Any]] = []
        self.t_start = time.time()

    def offsets(self) -> tuple[int, int, int]:
        """(end, processed by the coincidence query, by the raw archive query)."""
        svc, parts = self.svc, self.partitions
        ends = [self.consumer.get_watermark_offsets(TopicPartition(svc.topic_in, p),
                                                    timeout=10)[1] for p in parts]
        done = checkpoint_offsets(svc.query_folder("coincidence"), svc.topic_in)
        raw = checkpoint_offsets(svc.query_folder("raw"), svc.topic_in)
        return (sum(ends), sum(done.get(p, 0) for p in parts),
                sum(raw.get(p, 0) for p in parts))

    def sample(self) -> dict[str, Any]:
        """Take one sample, keep it in :attr:`samples` and return it."""
        end, processed, raw = self.offsets()
        kafka = proc_usage(self.kafka_pid) if self.kafka_pid else None
        assert self.svc.proc is not None  # sampled while the service runs
        rss, ticks = service_usage(self.svc.proc.pid)
        s = {"t": round(time.time() - self.t_start, 1), "end": end, "processed": processed,
             "lag": end - processed, "raw": raw, "rss": rss, "ticks": ticks,
             "machine": machine_ticks(), "kafka_ticks": kafka[1] if kafka else 0,
             "bench_s": sum(os.times()[:2]), "load": round(os.getloadavg()[0], 2),
             "free_gb": round(shutil.disk_usage(self.state_dir).free / 1e9, 1)}
        self.samples.append(s)
        return s

    def close(self) -> None:
        """Close the Kafka consumer of the offsets."""
        self.consumer.close()


@dataclass(frozen=True)
class _Outcome:
    """How the measuring loop ended."""

    final: dict[str, Any]  # the last sample: drained (or given up)
    end_of_sending: dict[str, Any] | None  # the sample when the producer finished
    stopped_early: str | None  # why the run ended before the backlog was drained
    unhealthy: bool  # the service exited or stalled: its memory says little


def _drive(svc: ScratchService, sampler: _Sampler, sender: threading.Thread,
           stop_sending: threading.Event, *, sample_s: float, min_free_gb: float,
           stall_timeout_s: float, drain_s: float) -> _Outcome:
    """Sample every ``sample_s`` while the producer sends, then until the backlog is
    drained; stop sending on low disk, stop on a stalled or exited service or when the
    backlog is not drained ``drain_s`` after the end of sending."""
    stopped_early: str | None = None
    unhealthy = False
    end_of_sending: dict[str, Any] | None = None
    next_sample = 0.0
    progress = (0, time.time())  # (processed, when it last moved)
    proc = svc.proc
    assert proc is not None  # started
    while True:
        elapsed = time.time() - sampler.t_start
        if elapsed >= next_sample:
            last = sampler.sample()
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
        if proc.poll() is not None:
            stopped_early = f"service exited ({proc.returncode}); see {svc.log_path}"
            unhealthy = True
            stop_sending.set()
            break
        if end_of_sending is None and not sender.is_alive():
            end_of_sending = sampler.sample()
        if end_of_sending is not None:
            end, processed, _ = sampler.offsets()
            if end == processed:
                break
            if elapsed - end_of_sending["t"] > drain_s:
                idle = time.time() - progress[1]
                stopped_early = (f"backlog of {end - processed} alerts not drained "
                                 f"{drain_s:.0f} s after the end of sending; last "
                                 f"micro-batch committed {idle:.0f} s ago")
                unhealthy = idle > stall_timeout_s
                break
        time.sleep(max(0.0, min(1.0, next_sample - (time.time() - sampler.t_start))))
    final = sampler.sample()  # drained (or given up): the end of the measurement
    return _Outcome(final, end_of_sending, stopped_early, unhealthy)
