"""``mm-broker bench retro``: a late region retro-matched against the alert archive.

A new region (the real S230518h map, 666 deg²) against ``n_alerts`` archived alerts
spread over 20 nights: seconds until all its associations are emitted by
:meth:`coincidence.engine.CoincidenceEngine.add_region` reading the archive through
:class:`coincidence.archive_store.ArchiveAlertStore`. The synthetic archive is written
once per size under the state directory (``bench/retro-v2-N``) and reused.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import healpy as hp
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
from astropy.time import Time

import skymaps
from benchmarks.common import machine
from coincidence.archive_store import ArchiveAlertStore
from coincidence.engine import CoincidenceEngine, EventMeta
from coincidence.pchance import FixedRate
from fink_core.pipeline import PARTITION_ORDER
from mm_broker.app.alert_frame import windows_from_settings
from mm_broker.core.config import Settings
from mm_broker.core.models import Messenger, Role, SkyMap

#: The real multi-order map of the benchmark, relative to the data directory.
RETRO_MAP = "skymaps/gw/S230518h-INITIAL-20230518T160718Z.multiorder.fits"
#: Nights the archived alerts are spread over.
NIGHTS = 20


def synthetic_archive(root: Path, n_alerts: int, t0_jd: float, nights: int = NIGHTS,
                      seed: int = 7) -> None:
    """Write an archive of alerts uniform on the sky, laid out as fink_core's.

    Parameters
    ----------
    root : Path
        Archive root; the alerts go to ``enriched/night=…/hpx1=…`` with the columns
        the retro-match reads, one file per partition (as after a nightly compaction).
    n_alerts : int
        Alerts in all.
    t0_jd : float
        Julian date of the trigger; the nights start with the night of ``t0_jd``.
    nights : int, optional
        Nights the alerts are spread over, evenly.
    seed : int, optional
        Seed of the positions and times.
    """
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
    """A new region against ``n_alerts`` archived alerts: seconds to all associations.

    Parameters
    ----------
    settings : Settings
        Configuration (data and state directories).
    n_alerts : int, optional
        Alerts in the synthetic archive (spread over 20 nights after the trigger).

    Returns
    -------
    dict
        ``seconds`` (the retro-match), ``associations``, ``archived_alerts``,
        ``nights``, ``region``, ``region_area_deg2``, ``goal_seconds``,
        ``archive_generation_s`` (0 when the archive was already there) and
        :func:`~benchmarks.common.machine`.
    """
    region = skymaps.region_for(SkyMap((settings.data_dir / RETRO_MAP).read_bytes()))
    t0 = datetime(2023, 5, 18, 12, 59, 8, 167000, tzinfo=UTC)
    root = settings.state_dir / "bench" / f"retro-v2-{n_alerts}"
    marker = root / ".complete"
    t_gen = 0.0
    if not marker.exists():
        t1 = time.perf_counter()
        synthetic_archive(root, n_alerts, float(Time(t0).jd))
        marker.write_text("ok\n")
        t_gen = time.perf_counter() - t1
    store = ArchiveAlertStore(str(root))
    engine = CoincidenceEngine(store=store, rate=FixedRate(0.5),
                               windows=windows_from_settings(settings))
    meta = EventMeta("LVK:S230518h", Messenger.GW, "LVK", "H1,L1", t0, 1, Role.OBSERVATION)
    t1 = time.perf_counter()
    emitted = engine.add_region(meta, 1, region)
    dt = time.perf_counter() - t1
    return {"benchmark": "retro", **machine(), "archived_alerts": n_alerts, "nights": NIGHTS,
            "region": RETRO_MAP, "region_area_deg2": round(region.area_deg2, 1),
            "associations": len(emitted), "seconds": round(dt, 3), "goal_seconds": 10,
            "archive_generation_s": round(t_gen, 1)}
