"""``mm-broker bench notices``: notice received → region stored and active.

Median and 95th percentile, on a scratch database of the local PostgreSQL, for a
real Swift BAT circle and a real LVK ``igwn.gwalert`` with its embedded multi-order
map, each ingested ``repeat`` times through :func:`mm_broker.app.ingest.ingest`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, select

from benchmarks.common import machine, percentiles
from mm_broker.app.ingest import Limits, ingest
from mm_broker.core.config import Settings
from mm_broker.core.db.migrate import engine_for
from mm_broker.core.db.schema import events, notices, raw_journal, regions
from mm_broker.core.db.scratch import temporary_database

#: Real notices used, relative to the data directory.
CIRCLE_NOTICE = "notices/swift/BAT_GRB_Pos_655721-214.xml"
MAP_NOTICE_DIR = "notices/lvk"


def forget_event(engine: Engine, event_id: str) -> None:
    """Remove an event and everything stored for it (between benchmark iterations).

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The (scratch) store.
    event_id : str
        The event whose rows go: its notices, regions and raw journal rows.
    """
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


def lvk_map_notice(data_dir: Path) -> Path:
    """The first real ``igwn.gwalert`` JSON with an embedded sky map.

    Parameters
    ----------
    data_dir : Path
        Root of the shared data.

    Returns
    -------
    Path
        A PRELIMINARY or INITIAL notice under ``notices/lvk`` larger than 10 kB
        whose ``skymap`` is not null.

    Raises
    ------
    FileNotFoundError
        If there is none.
    """
    for path in sorted((data_dir / MAP_NOTICE_DIR).rglob("*.json")):
        text = path.read_bytes()
        if b'"skymap"' in text and b'"PRELIMINARY"' in text or b'"INITIAL"' in text:
            if b'"skymap": null' not in text and len(text) > 10_000:
                return path
    raise FileNotFoundError(f"no igwn.gwalert JSON with an embedded map under {data_dir}")


def bench_notices(settings: Settings, repeat: int = 30) -> dict[str, Any]:
    """Notice received → region stored and active, for a circle and an LVK map notice.

    Parameters
    ----------
    settings : Settings
        Configuration of the local services (a scratch database is made from it).
    repeat : int, optional
        Timed ingestions per notice (after two untimed warm-up ones).

    Returns
    -------
    dict
        ``circle`` and ``skymap``: ``file``, ``median_ms``, ``p95_ms``, ``n``;
        ``goal_ms_p95``; and :func:`~benchmarks.common.machine`.
    """
    with temporary_database(settings, "mm_bench") as scratch:
        return _bench_notices(scratch, repeat)


def _bench_notices(settings: Settings, repeat: int) -> dict[str, Any]:
    engine = engine_for(settings)
    limits = Limits.from_settings(settings)
    out: dict[str, Any] = {"benchmark": "notices", **machine()}
    cases = {"circle": settings.data_dir / CIRCLE_NOTICE,
             "skymap": lvk_map_notice(settings.data_dir)}
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
                forget_event(engine, result.notice.event_id)
            out[name] = {"file": str(path.relative_to(settings.data_dir)),
                         **percentiles(samples)}
        out["goal_ms_p95"] = {"circle": 20, "skymap": 300}
    finally:
        engine.dispose()
    return out
