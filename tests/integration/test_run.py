"""The streaming service on the real services: a late notice finds alerts archived
before it, its counterparts reach the topic once, and a restart doubles nothing."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import healpy as hp
import numpy as np
import pytest
from sqlalchemy import func, select

from mm_broker.core import config

pytestmark = [pytest.mark.services, pytest.mark.spark]

ALERTS = "alerts/ztf/avro/20181129_fink-alert-simulator"


def test_late_notice_retro_match_published_once(fresh_db: config.Settings, spark,
                                                data_dir: Path, tmp_path: Path) -> None:
    from fink_core import simulator
    from fink_core.files import read_alert_files
    from mm_broker.app import run
    from mm_broker.app.ingest import Limits, ingest
    from mm_broker.core.db.migrate import engine_for
    from mm_broker.core.db.schema import associations
    from publishers.consume import read

    tag = uuid.uuid4().hex[:8]
    env = {**os.environ, "MM_POSTGRES__DATABASE": str(fresh_db.get("postgres.database")),
           "MM_ALERTS__TOPICS": f'["test.run.{tag}"]',
           "MM_ALERTS__ARCHIVE_URI": (tmp_path / "archive").as_uri(),
           "MM_ALERTS__CHECKPOINT_URI": (tmp_path / "ckpt").as_uri(),
           "MM_PUBLISH__TOPIC_PREFIX": f"t{tag}"}
    settings = config.load(environ=env)
    files = simulator.alert_files([data_dir / ALERTS])
    sent = simulator.send(files, f"test.run.{tag}", str(settings.get("kafka.bootstrap")))
    assert sent.delivered == len(files)

    first = run.run(settings, once=True, spark=spark, name="t")
    assert first["published"] == 0 and first["alerts"] > 0

    # A late notice: an X-ray transient whose 90 % circle holds a cluster of the alerts.
    df = read_alert_files([data_dir / ALERTS])
    ra0, dec0, radius = 25.6, -27.9, 2.0
    sep = hp.rotator.angdist([ra0, dec0], [df["ra"].to_numpy(), df["dec"].to_numpy()],
                             lonlat=True)
    near = np.degrees(sep) < radius
    fresh = (df["obs_jd"] - df["ztf_jdstarthist"]).to_numpy() < 10
    t0_jd = float(df.loc[near & fresh, "ztf_jdstarthist"].min()) - 60 / 86400
    t0 = datetime(2000, 1, 1, 12, tzinfo=UTC) + timedelta(days=t0_jd - 2451545.0)
    notice = {"$schema": "https://gcn.nasa.gov/schema/main/gcn/notices/einstein_probe/wxt/"
                         "alert.schema.json",
              "instrument": "WXT", "trigger_time": t0.isoformat().replace("+00:00", "Z"),
              "id": [f"9{tag}"], "ra": ra0, "dec": dec0, "ra_dec_error": radius}
    engine = engine_for(settings)
    try:
        result = ingest(engine, json.dumps(notice).encode(), "gcn",
                        "gcn.notices.einstein_probe.wxt.alert",
                        limits=Limits.from_settings(settings))
        assert result.status == "stored", result.reason
        region = result.region
        assert region is not None

        # Expected, independently: inside the region's ranges, in the window, new.
        ipix = hp.ang2pix(2**29, df["ra"].to_numpy(), df["dec"].to_numpy(), nest=True,
                          lonlat=True).astype(np.int64)  # region.ranges' dtype (IPIX_DTYPE)
        lo, hi = region.ranges[:, 0], region.ranges[:, 1]
        k = np.searchsorted(lo, ipix, side="right") - 1
        inside = (k >= 0) & (ipix < hi[np.clip(k, 0, None)])
        obs = np.maximum(df["obs_jd"].to_numpy(), df["ztf_jdstarthist"].to_numpy())
        new = df["ztf_jdstarthist"].to_numpy() >= t0_jd - 600 / 86400
        in_window = (obs >= t0_jd - 600 / 86400) & (obs <= t0_jd + 20)
        expected = set(df.loc[inside & new & in_window, "alert_id"].astype(str))
        assert expected, "the test cluster must give counterparts"

        second = run.run(settings, once=True, spark=spark, name="t")
        third = run.run(settings, once=True, spark=spark, name="t")
        with engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(associations)).scalar_one()
    finally:
        engine.dispose()
    assert second["published"] == len(expected)
    assert third["published"] == 0  # a restart republishes nothing
    assert stored == len(expected)
    got = read(f"t{tag}.counterparts.x", str(settings.get("kafka.bootstrap")), timeout=10)
    ids = [m.record["alert_id"] for m in got]
    assert sorted(ids) == sorted(expected)
