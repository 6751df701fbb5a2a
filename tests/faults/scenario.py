"""What the fault scenarios share: planted regions with independently computed
counterparts, and counters of what reached the archive, the table and the topics."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import healpy as hp
import numpy as np
import pandas as pd
from sqlalchemy import select

from mm_broker.core import config

ALERTS = "alerts/ztf/avro/20181129_fink-alert-simulator"


@dataclass
class Planted:
    """A circular X-ray notice around a cluster of real alerts, and its counterparts
    (known once the notice is stored)."""

    notice: bytes
    t0_jd: float
    alerts: pd.DataFrame
    event_id: str = ""
    region_version: int = 0
    expected: set[str] = field(default_factory=set)

    def keys(self) -> set[str]:
        """Topic keys (``event|region_version|alert``) the counterparts must have."""
        return {f"{self.event_id}|{self.region_version}|{a}" for a in self.expected}


def plant(df: pd.DataFrame, tag: str, ra0: float, dec0: float, radius: float) -> Planted:
    """An Einstein Probe WXT notice whose 90 % circle holds fresh alerts of ``df``, its
    trigger 60 s before the earliest first detection among them."""
    sep = np.degrees(hp.rotator.angdist([ra0, dec0], [df["ra"].to_numpy(),
                                                      df["dec"].to_numpy()], lonlat=True))
    fresh = (df["obs_jd"] - df["ztf_jdstarthist"]).to_numpy() < 10
    t0_jd = float(df.loc[(sep < radius) & fresh, "ztf_jdstarthist"].min()) - 60 / 86400
    t0 = datetime(2000, 1, 1, 12, tzinfo=UTC) + timedelta(days=t0_jd - 2451545.0)
    body = {"$schema": "https://gcn.nasa.gov/schema/main/gcn/notices/einstein_probe/wxt/"
                       "alert.schema.json",
            "instrument": "WXT", "trigger_time": t0.isoformat().replace("+00:00", "Z"),
            "id": [f"9{tag}"], "ra": ra0, "dec": dec0, "ra_dec_error": radius}
    return Planted(json.dumps(body).encode(), t0_jd, df)


def store(settings: config.Settings, planted: Planted) -> Planted:
    """Ingest the notice as the GCN listener would, then compute its counterparts.

    The expected counterparts are computed here with numpy, independently of the
    engine: inside the stored region's order-29 ranges, first detection not older
    than t0 − 600 s, and the alert time (the later of the observation and the first
    detection) in [t0 − 600 s, t0 + 20 d].
    """
    from mm_broker.app.ingest import Limits, ingest
    from mm_broker.core.db.migrate import engine_for

    engine = engine_for(settings)
    try:
        result = ingest(engine, planted.notice, "gcn", "gcn.notices.einstein_probe.wxt.alert",
                        limits=Limits.from_settings(settings))
    finally:
        engine.dispose()
    assert result.status == "stored", result.reason
    assert result.region is not None and result.notice is not None
    df, t0_jd, region = planted.alerts, planted.t0_jd, result.region
    ipix = hp.ang2pix(2**29, df["ra"].to_numpy(), df["dec"].to_numpy(), nest=True,
                      lonlat=True).astype(np.int64)  # region.ranges' dtype (IPIX_DTYPE)
    lo, hi = region.ranges[:, 0], region.ranges[:, 1]
    k = np.searchsorted(lo, ipix, side="right") - 1
    inside = (k >= 0) & (ipix < hi[np.clip(k, 0, None)])
    first = df["ztf_jdstarthist"].to_numpy()
    obs = np.maximum(df["obs_jd"].to_numpy(), first)
    new = first >= t0_jd - 600 / 86400
    in_window = (obs >= t0_jd - 600 / 86400) & (obs <= t0_jd + 20)
    planted.event_id = result.notice.event_id
    assert result.region_version is not None
    planted.region_version = int(result.region_version)
    planted.expected = set(df.loc[inside & new & in_window, "alert_id"].astype(str))
    assert planted.expected, "the planted region must hold counterparts"
    return planted


def archived_ids(archive: Path) -> Counter[str]:
    """alert_id → rows in the enriched archive (decode errors left out), read as the
    product reads it: complete, committed files only (files being written have hidden
    temporary names, see :mod:`fink_core.archive_files`)."""
    from fink_core.archive_files import read_archive

    table = read_archive(archive / "enriched", columns=["alert_id", "decode_error"])
    if table is None:
        return Counter()
    frame = table.to_pandas()
    return Counter(frame.loc[frame["decode_error"].isna(), "alert_id"].astype(str))


def raw_offsets(archive: Path) -> Counter[tuple[int, int]]:
    """(partition, offset) → rows in the raw archive, read as Spark reads it: the files
    its file sink committed in ``_spark_metadata`` (a glob would also read the stray
    files of a micro-batch the SIGKILL interrupted before its commit, which the
    restart wrote again under other names)."""
    from fink_core.archive_files import committed_files, read_archive

    assert committed_files(archive / "raw") is not None or not (archive / "raw").exists(), \
        "the raw archive is written by Spark's file sink: it must have _spark_metadata"
    table = read_archive(archive / "raw", columns=["partition", "offset"])
    if table is None:
        return Counter()
    frame = table.to_pandas()
    return Counter(zip(frame["partition"].astype(int), frame["offset"].astype(int),
                       strict=True))


def stored_keys(settings: config.Settings) -> Counter[str]:
    """Keys of the rows of the associations table (and whether any is unconfirmed)."""
    from mm_broker.core.db.migrate import engine_for
    from mm_broker.core.db.schema import associations

    engine = engine_for(settings)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(associations.c.event_id, associations.c.region_version,
                                       associations.c.alert_id)).all()
    finally:
        engine.dispose()
    return Counter(f"{r[0]}|{r[1]}|{r[2]}" for r in rows)


def topic_keys(settings: config.Settings, topic: str) -> Counter[str]:
    """Key → messages on a counterpart topic."""
    from publishers.consume import ConsumeError, read

    try:
        return Counter(m.key for m in read(topic, str(settings.get("kafka.bootstrap")),
                                           timeout=5) if m.key is not None)
    except ConsumeError:
        return Counter()


def wait_until(check: Callable[[], bool], timeout: float, what: str,
               interval: float = 1.0) -> float:
    """Poll ``check`` until true; return seconds waited; fail naming ``what``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if check():
            return time.monotonic() - t0
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def once_each(name: str, counted: Counter[str], expected: set[str]) -> list[str]:
    """Problems with ``counted`` against ``expected`` (each exactly once), named."""
    lost = sorted(expected - set(counted))
    doubled = sorted(k for k, n in counted.items() if n > 1)
    extra = sorted(set(counted) - expected)
    out = []
    if lost:
        out.append(f"{name}: {len(lost)} lost: {lost[:20]}")
    if doubled:
        out.append(f"{name}: {len(doubled)} doubled: {[(k, counted[k]) for k in doubled[:20]]}")
    if extra:
        out.append(f"{name}: {len(extra)} unexpected: {extra[:20]}")
    return out


def thirds(files: list[Path]) -> list[list[Path]]:
    """The alert files in three consecutive parts."""
    n = len(files)
    return [files[:n // 3], files[n // 3: 2 * n // 3], files[2 * n // 3:]]


class InProcessService:
    """`mm-broker run` in a thread of the test (sharing the test's Spark session)."""

    def __init__(self, settings: config.Settings, spark: object, name: str) -> None:
        import threading

        from mm_broker.app import run

        self.batches: list[dict[str, object]] = []
        self.stop_event = threading.Event()
        self.out: dict[str, object] = {}

        def service() -> None:
            try:
                self.out["counts"] = run.run(settings, spark=spark, name=name,
                                             stop=self.stop_event,
                                             on_batch_done=self.batches.append)
            except BaseException as exc:  # noqa: BLE001 - reported by stop()
                self.out["error"] = exc

        self.thread = threading.Thread(target=service, daemon=True)
        self.thread.start()

    def processed(self) -> int:
        """Alerts processed by the micro-batches so far."""
        return sum(int(str(b["alerts"])) for b in self.batches)

    def stop(self) -> dict[str, object]:
        """Stop the service; return its counts (raise what it raised)."""
        self.stop_event.set()
        self.thread.join(120)
        if "error" in self.out:
            raise AssertionError(f"run failed: {self.out['error']!r}")
        counts = self.out["counts"]
        assert isinstance(counts, dict)
        return counts
