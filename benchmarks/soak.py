"""``mm-broker bench soak``: sustained load through the whole chain.

Rewritten copies of a real ZTF alert at a fixed rate into Kafka → ``mm-broker run``
(a subprocess on scratch resources) → the counterpart topic and VOEvents through
Comet, against circles stored through the real ingest; throughput, lag, latency, RSS
and CPU over time. :func:`bench_soak` documents every figure;
``benchmarks/README.md`` summarises them.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
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
from benchmarks.procstat import cpu_by_role, machine_ticks, proc_usage, service_usage
from benchmarks.scratch_service import (
    ScratchService,
    batch_log,
    checkpoint_offsets,
    comet_subscriber,
    stop_process,
)
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
    """
    rate = rate_per_min / 60.0
    duration = minutes * 60.0
    n = int(round(rate * duration))
    regions = int(regions)
    warm = min(warmup_s, duration / 5)
    drain = max(drain_timeout_s, duration)
    template = AlertTemplate(settings.data_dir / LATENCY_ALERT, cutouts=bool(cutouts))
    alert_bytes = len(template.data)
    sky = soak_sky(regions, n, match_fraction, int(seed))
    ipix = hp.ang2pix(2**29, sky["ra"], sky["dec"], nest=True, lonlat=True).astype(np.int64)
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
    with ScratchService(settings, "soak", trigger, workdir, env) as svc:
        notices = svc.work / "notices"
        notices.mkdir(parents=True, exist_ok=True)
        expected_per_alert = np.zeros(n, dtype=np.int64)
        for k in range(regions):
            t0 = jd_datetime(template.first_jd - (60 + 10 * k) / 86400)
            payload = ep_notice(f"{svc.tag}{k:03d}", t0, float(sky["centre_ra"][k]),
                                 float(sky["centre_dec"][k]), float(sky["radius"][k]))
            (notices / f"{k:03d}.json").write_bytes(payload)
            stored_region = svc.ingest(payload).region
            assert stored_region is not None  # a stored circle has its region
            expected_per_alert += in_ranges(ipix, stored_region.ranges)
        follower = CounterpartFollower(svc.bootstrap, [svc.counterpart_topic()], sent_at,
                                        base)
        follower.start()
        subscriber = comet_subscriber(settings, svc.work, svc.tag) if voevents else None
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
            done = checkpoint_offsets(svc.query_folder("coincidence"), svc.topic_in)
            raw = checkpoint_offsets(svc.query_folder("raw"), svc.topic_in)
            return (sum(ends), sum(done.get(p, 0) for p in partitions),
                    sum(raw.get(p, 0) for p in partitions))

        def sample() -> dict[str, Any]:
            end, processed, raw = offsets()
            kafka = proc_usage(kafka_pid) if kafka_pid else None
            assert svc.proc is not None  # sampled while the service runs
            rss, ticks = service_usage(svc.proc.pid)
            s = {"t": round(time.time() - t_start, 1), "end": end, "processed": processed,
                 "lag": end - processed, "raw": raw, "rss": rss, "ticks": ticks,
                 "machine": machine_ticks(), "kafka_ticks": kafka[1] if kafka else 0,
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
                target=lambda: sent_box.append(pace(producer, svc.topic_in, make, n, rate,
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
                assert svc.proc is not None
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
                stop_process(subscriber)
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
        batches = [b for b in batch_log(svc.log_path, t_start) if b[0] >= warm]
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
    spent = cpu_by_role([x["ticks"] for x in samples[a:e + 1]])
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
        **latency_figures("latency", after_warm),
        **latency_figures("latency_all", all_lat),
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
