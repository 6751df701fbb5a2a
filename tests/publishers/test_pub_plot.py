"""Event plots: a real GW sky map (multi-order and flat), a GRB circle, a region given as
ranges. Each writes a PNG of plausible size; the projection follows the region's size."""

from __future__ import annotations

from pathlib import Path

import healpy as hp
import numpy as np
import pytest

from mm_broker.core.models import Region
from publishers import plot

GW_MOC = "skymaps/gw/S240115ak-PRELIMINARY-20240115T200827Z.multiorder.fits"
GRB_FLAT = "skymaps/grb/GRB180116A_glg_healpix_all_bn180116026.fit"


def _png_ok(path: Path, min_bytes: int = 20_000) -> tuple[int, int]:
    import matplotlib.image as mpimg

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert min_bytes < len(data) < 3_000_000, len(data)
    img = mpimg.imread(path)
    assert img.shape[0] > 400 and img.shape[1] > 400
    assert float(np.std(img[..., :3])) > 0.05  # not a blank canvas
    return img.shape[1], img.shape[0]


def test_real_gw_multiorder_map(data_dir: Path, tmp_path: Path) -> None:
    info = plot.read_map((data_dir / GW_MOC).read_bytes())
    assert isinstance(info, plot.MultiOrderMap)
    # Probability sums to one over the sphere.
    from ligo.skymap.moc import uniq2pixarea

    assert float(np.sum(info.probdensity * uniq2pixarea(info.uniq))) == pytest.approx(1, 1e-6)
    best = int(np.argmax(info.probdensity))
    from ligo.skymap.moc import uniq2ang

    theta, phi = uniq2ang(info.uniq[best:best + 1])
    ra0, dec0 = float(np.degrees(phi[0])), float(90 - np.degrees(theta[0]))
    cands = [{"ra": (ra0 + 2 * i) % 360, "dec": dec0 - i, "rank": i + 1,
              "event_id": "LVK:S240115ak", "region_version": 1} for i in range(4)]
    out = plot.plot_event(info, cands, tmp_path / "gw.png")
    assert out.projection == "astro hours mollweide" and out.radius_deg is None
    assert 1000 < out.area90_deg2 < 20000  # a broad single-detector-like map
    width, height = _png_ok(out.path, 50_000)
    assert width > height  # all-sky aspect


def test_real_flat_grb_map_zooms_when_small_enough(data_dir: Path, tmp_path: Path) -> None:
    info = plot.read_map((data_dir / GRB_FLAT).read_bytes())
    assert isinstance(info, plot.FlatMap) and len(info.prob) == 12 * 128**2
    out = plot.plot_event(info, [], tmp_path / "gbm.png", title="GRB180116A (GBM)")
    assert out.n_candidates == 0 and out.area90_deg2 > 10
    _png_ok(out.path)


def test_grb_circle_zoom(tmp_path: Path) -> None:
    circle = plot.CircleRegion(ra=130.2, dec=-12.5, radius_deg=3.2, radius50_deg=1.6)
    cands = [{"ra": 130.9, "dec": -12.0, "rank": 1}, {"ra": 128.4, "dec": -14.0, "rank": 2}]
    out = plot.plot_event(circle, cands, tmp_path / "grb.png", title="Fermi-GBM:1")
    assert out.projection == "astro zoom"
    assert out.radius_deg == pytest.approx(1.25 * 3.2)  # candidates lie inside the circle
    assert out.area90_deg2 == pytest.approx(2 * np.pi * (1 - np.cos(np.radians(3.2)))
                                            * (180 / np.pi) ** 2)
    _png_ok(out.path)


def test_wide_circle_and_far_candidate_go_all_sky(tmp_path: Path) -> None:
    out = plot.plot_event(plot.CircleRegion(10.0, 5.0, 2.0), [{"ra": 200.0, "dec": -40.0,
                                                                "rank": 1}],
                          tmp_path / "far.png")
    assert out.projection == "astro hours mollweide"


def test_region_from_ranges(tmp_path: Path) -> None:
    """A stored Region without its map: the outline from its order-29 ranges."""
    order = 10
    ipix = np.sort(hp.query_disc(2**order, hp.ang2vec(45.0, 20.0, lonlat=True),
                                 np.radians(2.0), nest=True))
    shift = np.uint64(2 * (29 - order))
    ranges = np.stack([ipix.astype(np.uint64) << shift,
                       (ipix.astype(np.uint64) + np.uint64(1)) << shift], axis=1)
    empty = np.zeros((0, 2), np.uint64)
    region = Region(kind="ellipse", ranges=ranges, area_deg2=12.57, credible_level=0.9,
                    tile_ranges=empty, tile_credible_level=np.zeros(0),
                    tile_density_deg2=np.zeros(0))
    info = plot.region_info(region)
    assert isinstance(info, plot.RangesRegion)
    out = plot.plot_event(info, [{"ra": 45.5, "dec": 20.5, "rank": 1}], tmp_path / "r.png")
    assert out.projection == "astro zoom"
    assert out.area90_deg2 == pytest.approx(12.57, rel=0.1)
    assert (out.center_ra, out.center_dec) == pytest.approx((45.0, 20.0), abs=0.1)
    _png_ok(out.path)
    circle = Region(kind="circle", ranges=ranges, area_deg2=12.57, credible_level=0.9,
                    tile_ranges=empty, tile_credible_level=np.zeros(0),
                    tile_density_deg2=np.zeros(0), center_ra=45.0, center_dec=20.0,
                    radius90_deg=2.0, sigma_deg=0.93)
    c = plot.region_info(circle)
    assert isinstance(c, plot.CircleRegion) and c.radius50_deg == pytest.approx(1.095, 1e-3)
