"""One dtype for order-29 indices on the hot path: no int64/uint64 mix anywhere.

numpy searches, subtracts and concatenates an int64 array against a uint64 one in
float64, which cannot tell apart indices near 3e18 that differ by less than 512.
Every array the join compares (the merged boundaries, the alerts' ``ipix``, the
store's sorted pixels, the region ranges) must therefore be of
:data:`mm_broker.core.models.IPIX_DTYPE`, whatever dtype a caller hands in.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
from coinc_regions import T0, WINDOWS, alerts_frame, circle_region

from coincidence.alerts import AlertBatch, InMemoryAlertStore
from coincidence.engine import CoincidenceEngine, EventMeta
from coincidence.index import ActiveRegions, RegionEntry, checked_ranges, ipix29
from coincidence.pchance import FixedRate
from fink_core.pipeline import enrich, enriched_arrow_schema
from mm_broker.core.models import IPIX_DTYPE, Circle, Messenger, Region
from skymaps import region_for
from skymaps.ranges import ang2pix29, contains, normalise

#: An index where float64 has a spacing of 512: B - 1, B and B + 1 are one float.
B = 3 * 10**18 + 1


def _tiny_region(dtype: type[np.integer]) -> Region:
    """A region of one order-29 pixel, ``[B, B + 1)``, its ranges of ``dtype``."""
    ranges = np.array([[B, B + 1]], dtype=dtype)
    empty = np.zeros((0, 2), dtype=dtype)
    return Region("skymap", ranges, 1e-12, 0.9, empty, np.zeros(0), np.zeros(0))


def _batch(pix: list[int]) -> AlertBatch:
    n = len(pix)
    return AlertBatch(
        alert_id=np.array([f"a{i}" for i in range(n)], dtype=object),
        object_id=np.array([f"o{i}" for i in range(n)], dtype=object),
        survey=np.full(n, "ZTF", dtype=object),
        ra=np.zeros(n),
        dec=np.zeros(n),
        ipix=np.array(pix, dtype=IPIX_DTYPE),
        time_ns=np.zeros(n, dtype=np.int64),
        first_ns=np.zeros(n, dtype=np.int64),
        quality=np.ones(n, dtype=bool),
    )


def test_the_dtype_is_signed_64_bit_and_holds_every_index() -> None:
    assert np.dtype(IPIX_DTYPE) == np.dtype(np.int64)  # PostgreSQL int8, Parquet int64
    assert 12 * 4**29 < np.iinfo(IPIX_DTYPE).max
    schema = enriched_arrow_schema([])
    assert schema.field("ipix29").type == pa.from_numpy_dtype(np.dtype(IPIX_DTYPE))


def test_a_mix_would_be_wrong_here() -> None:
    """The regime of the tests below: a float64 mix cannot place these indices."""
    assert float(B - 1) == float(B) == float(B + 1)
    mixed = np.searchsorted(np.array([B, B + 1], dtype=np.uint64),
                            np.array([B - 1, B, B + 1], dtype=np.int64), side="right")
    assert mixed.tolist() != [0, 1, 2]  # what one dtype gives (below)


def test_every_index_array_of_the_hot_path_has_the_one_dtype() -> None:
    # Regions as skymaps builds them, and as an older caller may hand them (uint64).
    circle = region_for(Circle(150.0, 20.0, 2.0, 0.9))
    assert circle.ranges.dtype == circle.tile_ranges.dtype == IPIX_DTYPE
    legacy = circle_region(152.0, 20.0, 1.0)
    legacy = Region(**{**legacy.__dict__, "ranges": legacy.ranges.astype(np.uint64)})
    assert checked_ranges(legacy, "legacy").dtype == IPIX_DTYPE
    index = ActiveRegions([RegionEntry("c", circle, 0, 1), RegionEntry("l", legacy, 0, 1)])
    alerts = AlertBatch.from_frame(alerts_frame(
        [{"alert_id": "x", "ra": 150.5, "dec": 20.0, "dt": timedelta(hours=1)}]))
    assert index.bounds.dtype == alerts.ipix.dtype == IPIX_DTYPE
    assert ipix29(1.0, 2.0).dtype == ang2pix29(1.0, 2.0).dtype == IPIX_DTYPE
    assert normalise(np.array([[4, 8]], dtype=np.uint64)).dtype == IPIX_DTYPE
    # ... and the engine, given the uint64 region, joins in that dtype.
    eng = CoincidenceEngine(windows=WINDOWS, rate=FixedRate(0.05))
    meta = EventMeta("E", Messenger.GRB, "Fermi", "GBM", T0, 1)
    eng.add_region(meta, 1, legacy)
    out = eng.process_alerts(alerts_frame(
        [{"alert_id": "y", "ra": 152.0, "dec": 20.0, "dt": timedelta(hours=1)}]))
    assert [a.alert_id for a in out] == ["y"]
    active, _ = eng._active_index()  # the structure process_alerts searches
    assert active.bounds.dtype == IPIX_DTYPE


def test_indices_near_3e18_are_told_apart_whatever_the_input_dtype() -> None:
    pix = [B - 1, B, B + 1]
    for dtype in (np.uint64, np.int64):
        region = _tiny_region(dtype)
        index = ActiveRegions([RegionEntry("tiny", region, 0, 1)])
        alert_idx, _ = index.match(np.array(pix, dtype=np.uint64))
        assert alert_idx.tolist() == [1], dtype
        store = InMemoryAlertStore()
        store.add(_batch(pix))
        assert store.query(0, 0, region.ranges).alert_id.tolist() == ["a1"], dtype
        assert contains(region.ranges, np.array(pix, dtype=np.int64)).tolist() == [
            False, True, False]
        assert contains(region.ranges.astype(np.int64),
                        np.array(pix, dtype=np.uint64)).tolist() == [False, True, False]


def test_the_archived_ipix29_is_the_exact_index_of_the_position(data_dir: Path) -> None:
    """The pipeline's ``ipix29`` (what retro-matching from the archive searches) is the
    index of ``ra, dec``, not that index rounded through a float64 (off by up to 256)."""
    files = sorted((data_dir / "alerts/ztf/avro").rglob("*.avro"))[:200]
    out = enrich([f.read_bytes() for f in files], [])
    good = out["ipix29"].notna().to_numpy()
    assert good.sum() > 100
    ipix = out.loc[good, "ipix29"].to_numpy(dtype=IPIX_DTYPE)
    expected = ang2pix29(out.loc[good, "ra"].to_numpy(float), out.loc[good, "dec"].to_numpy(float))
    np.testing.assert_array_equal(ipix, expected)
