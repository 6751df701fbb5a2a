"""``mm-broker bench portal``: the portal's API with a large store.

A scratch database (:func:`mm_broker.core.db.scratch.temporary_database`, dropped
afterwards) is filled with ``n_events`` events (one notice, one raw journal row and
one region version each: nine in ten circles, one in ten sky maps with tiles, 0.5 to
3 deg in radius, triggers spread over a year) and ``n_candidates`` counterpart
records spread evenly over them, loaded with COPY. The portal runs in uvicorn
(one process, in a thread, rate limit off) and is asked over HTTP, one request at a
time, with keep-alive:

* ``events``: ``GET /api/v1/events`` (one page of 50, at random offsets and sort keys),
* ``candidates``: ``GET /api/v1/events/{id}/candidates`` of random events (first page),
* ``cone``: ``GET /api/v1/cone`` at random positions and times.

Goals (issue 14): events and candidates p95 ≤ 200 ms, cone p95 ≤ 50 ms.
"""

from __future__ import annotations

import http.client
import io
import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import healpy as hp
import numpy as np
import uvicorn
from sqlalchemy import Engine, text

from benchmarks.common import machine, percentiles
from mm_broker.app.serve.app import create_app
from mm_broker.core.config import Settings
from mm_broker.core.db.migrate import engine_for
from mm_broker.core.db.scratch import temporary_database

#: Order of the synthetic regions' cells.
CELL_ORDER = 8
T0 = datetime(2024, 1, 1, tzinfo=UTC)
GOALS_MS = {"events": 200.0, "candidates": 200.0, "cone": 50.0}


def _copy(engine: Engine, table: str, columns: str, lines: io.StringIO) -> None:
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            copy.write(lines.getvalue())


def _ranges(ra: float, dec: float, radius: float) -> np.ndarray:
    nside = 1 << CELL_ORDER
    vec = hp.ang2vec(ra, dec, lonlat=True)
    pix = np.sort(hp.query_disc(nside, vec, np.radians(radius), nest=True, inclusive=True))
    breaks = np.flatnonzero(np.diff(pix) != 1) + 1
    starts = np.concatenate([[pix[0]], pix[breaks]])
    ends = np.concatenate([pix[breaks - 1], [pix[-1]]]) + 1
    shift = 2 * (29 - CELL_ORDER)
    return np.stack([starts << shift, ends << shift], axis=1)


def fill(engine: Engine, n_events: int, n_candidates: int, seed: int) -> list[dict[str, Any]]:
    """Store the synthetic events, regions and records; return the events' centres."""
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC)
    events, journal, notices, regions, ranges, tiles = (io.StringIO() for _ in range(6))
    meta: list[dict[str, Any]] = []
    for i in range(n_events):
        eid = f"BENCH:{i:06d}"
        ra, dec = float(rng.uniform(0, 360)), float(np.degrees(np.arcsin(rng.uniform(-1, 1))))
        radius = float(rng.uniform(0.5, 3.0))
        t = T0 + timedelta(seconds=float(rng.uniform(0, 365 * 86400)))
        kind = "skymap" if i % 10 == 0 else "circle"
        messenger = "GW" if kind == "skymap" else "GRB"
        cells = _ranges(ra, dec, radius)
        area = float(len(cells)) and float(sum(int(h - lo) for lo, h in cells)) \
            * (41252.96 / 12 / 4.0 ** 29)
        sig = json.dumps({"far_hz": float(10 ** rng.uniform(-12, -4))} if kind == "skymap"
                         else {"data_significance_sigma": float(rng.uniform(3, 12))})
        events.write(f"{eid}\t{messenger}\tM{i % 7}\tI\tobservation\t{t.isoformat()}\tactive\t"
                     f"{i + 1}\t{(t - timedelta(seconds=600)).isoformat()}\t"
                     f"{(t + timedelta(days=20)).isoformat()}\t{now.isoformat()}\n")
        journal.write(f"{i + 1}\t{i:064x}\t\\\\x7b7d\t2\tdir\tbench\t{now.isoformat()}\t"
                      f"{now.isoformat()}\t1\tstored\n")
        notices.write(f"{i + 1}\t{eid}\t{i + 1}\tBENCH_POS\t1\t{t.isoformat()}\t{t.isoformat()}\t"
                      f"observation\tf\t{sig}\t{{}}\tactive\n")
        sigma = radius / 2.146 if kind == "circle" else "\\N"
        regions.write(f"{i + 1}\t{eid}\t{i + 1}\t1\t{kind}\t{area}\t0.9\t{len(cells)}\tbench\t"
                      f"{ra}\t{dec}\t{radius}\t{sigma}\t{{}}\tactive\t{now.isoformat()}\n")
        for lo, hi in cells:
            ranges.write(f"{i + 1}\t[{lo},{hi})\n")
            if kind == "skymap":
                tiles.write(f"{i + 1}\t[{lo},{hi})\t{rng.uniform(0, 0.9)}\t{rng.uniform(0, 1)}\n")
        meta.append({"event_id": eid, "ra": ra, "dec": dec, "t": t})
    _copy(engine, "raw_journal", "id, sha256, payload, size, source, topic, received_at, "
          "last_received_at, receipts, status", journal)
    with engine.begin() as conn:  # the foreign keys are circular: events first, unlinked
        conn.execute(text("SET session_replication_role = replica"))
        raw = conn.connection.driver_connection
        assert raw is not None
        for table, cols, buf in (
                ("events", "event_id, messenger, mission, instrument, role, trigger_time, "
                 "status, active_region_id, window_start, window_end, updated_at", events),
                ("notices", "id, event_id, journal_id, notice_type, version, issue_time, "
                 "trigger_time, role, retraction, significance, extra, status", notices),
                ("regions", "id, event_id, notice_id, version, kind, area_deg2, "
                 "credible_level, n_ranges, convention, center_ra, center_dec, radius90_deg, "
                 "sigma_deg, distance, status, created_at", regions)):
            with raw.cursor().copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                copy.write(buf.getvalue())
    _copy(engine, "region_ranges", "region_id, rng", ranges)
    _copy(engine, "region_tiles", "region_id, rng, credible_level, density_deg2", tiles)
    per = max(1, n_candidates // n_events)
    for start in range(0, n_candidates, 200_000):
        buf = io.StringIO()
        for k in range(start, min(n_candidates, start + 200_000)):
            ev = meta[(k // per) % n_events]
            rank = k % per + 1
            rec = {"event_id": ev["event_id"], "messenger": "GRB", "mission": "M",
                   "instrument": "I", "notice_version": 1, "region_version": 1,
                   "role": "observation", "status": "candidate",
                   "trigger_time": ev["t"].isoformat(), "survey": "ztf",
                   "object_id": f"ZTF24bench{k:07d}", "alert_id": str(10**12 + k),
                   "alert_time": ev["t"].isoformat(), "ra": ev["ra"], "dec": ev["dec"],
                   "delta_t_s": 3600.0, "separation_deg": 0.1, "credible_level": 0.2,
                   "prob_density_deg2": None, "p_chance": 0.01, "rank": rank,
                   "newness": "new" if k % 3 else "pre_existing", "mag": 19.0, "band": "r"}
            buf.write(f"{ev['event_id']}\t1\t{rec['alert_id']}\tcandidate\t"
                      f"{json.dumps(rec)}\t{now.isoformat()}\t{now.isoformat()}\n")
        _copy(engine, "associations", "event_id, region_version, alert_id, status, record, "
              "created_at, published_at", buf)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    return meta


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _timed(conn: http.client.HTTPConnection, path: str) -> float:
    t0 = time.perf_counter()
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    elapsed = time.perf_counter() - t0
    if resp.status != 200:
        raise RuntimeError(f"{path}: HTTP {resp.status} {body[:200]!r}")
    return elapsed


def bench_portal(settings: Settings, n_events: int = 10_000, n_candidates: int = 1_000_000,
                 requests: int = 200, seed: int = 3) -> dict[str, Any]:
    """Fill a scratch store and time the three kinds of request (module docstring)."""
    rng = np.random.default_rng(seed + 1)
    with temporary_database(settings, "mm_bench_portal") as scratch:
        engine = engine_for(scratch)
        t0 = time.monotonic()
        meta = fill(engine, n_events, n_candidates, seed)
        fill_s = time.monotonic() - t0
        port = _free_port()
        app = create_app(scratch.with_values({"serve.rate_limit_per_min": 0,
                                              "serve.port": port}), engine)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        samples: dict[str, list[float]] = {"events": [], "candidates": [], "cone": []}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            sorts = ["trigger_time", "updated_at", "area_deg2", "far_hz", "event_id"]
            for _ in range(5):  # warm-up
                _timed(conn, "/api/v1/events")
            for i in range(requests):
                query = {"offset": int(rng.integers(0, max(1, n_events - 50))),
                         "sort": sorts[i % len(sorts)]}
                if i % 4 == 1:
                    query["messenger"] = "GW"
                samples["events"].append(_timed(conn, "/api/v1/events?" + urlencode(query)))
                ev = meta[int(rng.integers(0, len(meta)))]
                samples["candidates"].append(_timed(
                    conn, f"/api/v1/events/{quote(ev['event_id'], safe=':')}/candidates"))
                near = meta[int(rng.integers(0, len(meta)))]
                when = near["t"] + timedelta(days=float(rng.uniform(0, 20)))
                pos = {"ra": (near["ra"] + float(rng.normal(0, 1))) % 360,
                       "dec": float(np.clip(near["dec"] + rng.normal(0, 1), -90, 90)),
                       "time": when.isoformat()}
                samples["cone"].append(_timed(conn, "/api/v1/cone?" + urlencode(pos)))
        finally:
            conn.close()
            server.should_exit = True
            thread.join(10)
            engine.dispose()
    figures: dict[str, Any] = {"benchmark": "portal", "n_events": n_events,
                               "n_candidates": n_candidates, "requests_each": requests,
                               "fill_s": round(fill_s, 1)}
    for name, values in samples.items():
        stats = percentiles(values)
        figures[f"{name}_median_ms"] = stats["median_ms"]
        figures[f"{name}_p95_ms"] = stats["p95_ms"]
        figures[f"{name}_goal_p95_ms"] = GOALS_MS[name]
        figures[f"{name}_ok"] = stats["p95_ms"] <= GOALS_MS[name]
    figures.update(machine())
    return figures
