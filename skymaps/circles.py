"""Circles, ellipses and boxes to :class:`~mm_broker.core.models.Region` objects.

Each published shape becomes an error model, and the region is the part of the sky
where the model's credible level is at most ``credible_level`` (0.9 by default):

* **circle**: the radial law of the mission convention (:mod:`skymaps.circle_model`,
  :mod:`skymaps.radial`: Fisher, the Fermi GBM core + tail mixture, the King profile
  of IceCube's two radii). Levels and densities are analytic
  (:func:`skymaps.lookup.credible_level_at`).
* **ellipse**: a 2-D Gaussian with semi-axes ``a``, ``b`` at the published
  containment, position angle east of north.
* **box** (asymmetric errors ``ra +p -m``, ``dec +p -m``): a 2-D Gaussian with a
  different width on each side (a "split" Gaussian). Under a ``"rectangle"``
  convention (IceCube's, as follow-up programmes cover them, Stein et al. 2023;
  ``<name>_rectangle_bbox``, e.g. MAXI) the published RA/Dec rectangle is the
  region; under a ``"contour"`` convention the 90 % contour passes through the four
  extents (four quarter-ellipses). The RA offsets are RA degrees and are converted
  to on-sky offsets at the centre's declination (see :func:`region_from_box`).

Ellipses and boxes are defined in the Lambert equal-area tangent plane (see
:mod:`skymaps.raster`); their levels and densities are looked up in tiles.

Ranges are the HEALPix cells covering the region (:mod:`skymaps.raster`, which
says why not mocpy's cone) down to an order whose pixels are at most 1/32 of the
radius or smallest half-width (at least order 6, at most 29): every point of the
region is covered, and the cells on the edge reach at most about one pixel (3-7 %
of the radius) beyond it.

Tiles
-----
Tiles are the cells, at an order two below that of the ranges (pixels at most 1/8
of the smallest 90 % half-width: a few hundred tiles; for elongated ellipses and
boxes coarser, about :data:`TILE_COUNT_TARGET` tiles), that cover the region. Each
carries the model's level and density at its centre.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import healpy as hp
import numpy as np
import numpy.typing as npt
from astropy.coordinates import SkyCoord, angular_separation
from ligo.skymap import moc as lsm_moc
from mocpy import MOC
from scipy.special import erf, ndtri

import skymaps.fisher as fisher
from mm_broker.core.errors import BadCoordinates
from mm_broker.core.models import Box, Circle, Ellipse, Region
from skymaps.circle_model import circle_model
from skymaps.conventions import (
    MAX_RADIUS_DEG,
    Convention,
    ConventionError,
    get_convention,
)
from skymaps.coords import validate_center, validate_containment, validate_radius
from skymaps.ranges import area_deg2, cells_to_ranges, normalise
from skymaps.raster import (
    FloatArray,
    LocalFrame,
    Norm,
    cover_cells,
    expand_to_order,
    order_for_scale,
)

__all__ = [
    "MIN_ORDER",
    "RANGE_PIXELS_PER_RADIUS",
    "TILE_COUNT_TARGET",
    "TILE_ORDERS_BELOW",
    "region_from_box",
    "region_from_circle",
    "region_from_ellipse",
]

#: Ranges are built at an order whose pixel is at most radius / 32 ...
RANGE_PIXELS_PER_RADIUS = 32.0
#: ... but never coarser than order 6 (0.92 deg pixels).
MIN_ORDER = 6
#: Tiles are two orders coarser than the ranges (pixels at most radius / 8) ...
TILE_ORDERS_BELOW = 2
#: ... and, for elongated ellipses and boxes, coarse enough that about this many
#: tiles cover the region.
TILE_COUNT_TARGET = 2000

_DEG2_PER_SR = (180.0 / math.pi) ** 2


def _orders(scale_deg: float) -> tuple[int, int]:
    order = order_for_scale(scale_deg, RANGE_PIXELS_PER_RADIUS, lowest=MIN_ORDER)
    return order, max(order - TILE_ORDERS_BELOW, 0)


def _pct(c: float) -> str:
    return f"{100.0 * c:.4g} %"


def region_from_circle(circle: Circle, *, credible_level: float = 0.9) -> Region:
    """Region of a circular localisation under its mission's error convention.

    Parameters
    ----------
    circle : Circle
        Centre, published radius, containment and convention name.
    credible_level : float, optional
        Probability content of the region (default 0.9).

    Returns
    -------
    Region
        ``kind="circle"``, with ``center_ra``, ``center_dec``, ``radius90_deg`` and
        ``sigma_deg`` filled in; ``area_deg2`` is the area of the ranges.

    Raises
    ------
    BadCoordinates
        Invalid centre, radius or containment (see :mod:`skymaps.coords`).
    ConventionError
        Unknown or inapplicable convention.

    Examples
    --------
    >>> region = region_from_circle(Circle(83.23, 2.75, 1.0, 0.9, convention="swift_bat"))
    >>> region.kind, round(region.radius90_deg, 6)
    ('circle', 1.0)
    >>> 3.14 < region.area_deg2 < 3.3  # pi r^2 plus the cells on the edge
    True
    """
    ra, dec = validate_center(circle.ra, circle.dec, what="circle centre")
    model = circle_model(circle, credible_level)
    order, tile_order = _orders(model.radius_deg)
    frame = LocalFrame(ra, dec)
    # In the equal-area tangent plane a circle of radius r is the disc of radius
    # chord(r): the norm is the plane radius (unit widths).
    chord = _chord(model.radius_deg)

    def radius(x: FloatArray, y: FloatArray) -> FloatArray:
        return np.asarray(np.hypot(x, y), dtype=np.float64)

    ranges = normalise(cells_to_ranges(*cover_cells(frame, radius, chord, 1.0, 1.0, order)))
    tiles = expand_to_order(*cover_cells(frame, radius, chord, 1.0, 1.0, tile_order),
                            tile_order)
    t_lon, t_lat = hp.pix2ang(1 << tile_order, tiles, nest=True, lonlat=True)
    theta = np.degrees(angular_separation(np.radians(ra), np.radians(dec),
                                          np.radians(t_lon), np.radians(t_lat)))
    return Region(
        kind="circle",
        ranges=ranges,
        area_deg2=area_deg2(ranges),
        credible_level=credible_level,
        tile_ranges=cells_to_ranges(tile_order, tiles),
        tile_credible_level=model.law.level(theta),
        tile_density_deg2=model.law.density_deg2(theta),
        center_ra=ra,
        center_dec=dec,
        radius90_deg=model.radius90_deg,
        sigma_deg=model.sigma_deg,
        convention=model.description
        + f"; ranges at order {order}, tiles at order {tile_order}",
        radial_model=model.law.to_dict(),
    )


Cover = Callable[[int], tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]


@dataclass(frozen=True)
class _SplitGaussian:
    """A 2-D Gaussian in the tangent equal-area plane, possibly with different widths
    on each side of its axes.

    ``norm`` is the Mahalanobis distance ``m``; the level of a point is
    ``1 - exp(-m**2 / 2)`` and its density ``peak * exp(-m**2 / 2)`` per steradian.
    """

    frame: LocalFrame
    norm: Norm
    sigmas: tuple[float, ...]  # radians
    peak: float  # per steradian
    #: For rectangles: ``max(|x| / s_x, |y| / s_y)``, whose level sets are the nested
    #: rectangles (level ``erf(t / sqrt 2)**2``); ``None``: the ellipses of ``norm``.
    rect_norm: Norm | None = None

    def levels(self, x: FloatArray, y: FloatArray) -> FloatArray:
        """Credible level of each plane position (its ellipse or rectangle)."""
        if self.rect_norm is not None:
            return np.asarray(erf(self.rect_norm(x, y) / math.sqrt(2.0)) ** 2,
                              dtype=np.float64)
        return np.asarray(-np.expm1(-self.norm(x, y) ** 2 / 2.0), dtype=np.float64)

    def model_area_deg2(self, k: float) -> float:
        """Area of ``{m <= k}``: pi k**2 times the mean product of the axis widths."""
        return k**2 / (2.0 * self.peak) * _DEG2_PER_SR

    def cover(self, k: float) -> Cover:
        return lambda order: cover_cells(self.frame, self.norm, k, min(self.sigmas),
                                         max(self.sigmas), order)


def _model_region(
    kind: str,
    model: _SplitGaussian,
    cover: Cover,
    half_width_deg: float,
    area_deg2_model: float,
    credible_level: float,
    description: str,
) -> Region:
    """Region covered by ``cover`` with tiles valued by ``model``."""
    order, tile_order = _orders(half_width_deg)
    tile_order = min(tile_order, order_for_scale(
        math.sqrt(area_deg2_model / TILE_COUNT_TARGET), 1.0, lowest=0))
    orders, ipix = cover(order)
    ranges = normalise(cells_to_ranges(orders, ipix))

    tiles = expand_to_order(*cover(tile_order), tile_order)
    xyz = np.array(hp.pix2vec(1 << tile_order, tiles, nest=True), dtype=np.float64).reshape(3, -1)
    x, y, _ = model.frame.project_vectors(xyz)
    m2 = model.norm(x, y) ** 2
    return Region(
        kind=kind,
        ranges=ranges,
        area_deg2=area_deg2(ranges),
        credible_level=credible_level,
        tile_ranges=cells_to_ranges(tile_order, tiles),
        tile_credible_level=model.levels(x, y),
        tile_density_deg2=model.peak * np.exp(-m2 / 2.0) / _DEG2_PER_SR,
        center_ra=model.frame.ra,
        center_dec=model.frame.dec,
        convention=description + f"; ranges at order {order}, tiles at order {tile_order}",
    )


def _contour_region(
    kind: str, model: _SplitGaussian, credible_level: float, description: str
) -> Region:
    """Region ``{m <= k(credible_level)}`` of the model."""
    k = fisher.gaussian_k(credible_level)
    chord_max = k * max(model.sigmas)
    if chord_max >= 2.0 or 2.0 * math.degrees(math.asin(chord_max / 2.0)) > MAX_RADIUS_DEG:
        raise BadCoordinates(
            f"{kind} {_pct(credible_level)} extent exceeds {MAX_RADIUS_DEG:.0f} deg: "
            "not a usable localisation"
        )
    half_width = math.degrees(2.0 * math.asin(k * min(model.sigmas) / 2.0))
    return _model_region(kind, model, model.cover(k), half_width,
                         model.model_area_deg2(k), credible_level, description)


def _no_systematic_model(name: str, kind: str) -> Convention:
    conv = get_convention(name)
    if conv.systematic is not None:
        raise ConventionError(f"convention {name!r} is defined for circles, not {kind}s")
    return conv


def _chord(angle_deg: float) -> float:
    return 2.0 * math.sin(math.radians(angle_deg) / 2.0)


def region_from_ellipse(ellipse: Ellipse, *, credible_level: float = 0.9) -> Region:
    """Region of an elliptical localisation (2-D Gaussian, semi-axes at ``containment``).

    Parameters
    ----------
    ellipse : Ellipse
        Centre, semi-axes ``a_deg`` (along ``pa_deg``, east of north) and ``b_deg``,
        containment and convention name.
    credible_level : float, optional
        Probability content of the region (default 0.9).

    Returns
    -------
    Region
        ``kind="ellipse"``; levels and densities come from the tiles.

    Examples
    --------
    MAXI GSC ellipse of 0.22 x 0.19 deg at 90 %, PA 153 deg:

    >>> region = region_from_ellipse(Ellipse(346.56, 18.61, 0.22, 0.19, 153.0, 0.9,
    ...                                      convention="maxi_gsc"))
    >>> 1.0 < region.area_deg2 / (np.pi * 0.22 * 0.19) < 1.06  # pi a b, plus edge cells
    True
    """
    ra, dec = validate_center(ellipse.ra, ellipse.dec, what="ellipse centre")
    a = validate_radius(ellipse.a_deg, what="semi-axis a")
    b = validate_radius(ellipse.b_deg, what="semi-axis b")
    pa_f = float(ellipse.pa_deg)
    if not math.isfinite(pa_f):
        raise BadCoordinates(f"position angle {ellipse.pa_deg!r} must be finite")
    containment = validate_containment(ellipse.containment)
    credible_level = validate_containment(credible_level, what="credible level")
    conv = _no_systematic_model(ellipse.convention, "ellipse")
    k_c = fisher.gaussian_k(containment)
    sa, sb = _chord(a) / k_c, _chord(b) / k_c
    pa = math.radians(pa_f)
    sin_pa, cos_pa = math.sin(pa), math.cos(pa)

    def norm(x: FloatArray, y: FloatArray) -> FloatArray:
        major = x * sin_pa + y * cos_pa
        minor = x * cos_pa - y * sin_pa
        return np.asarray(np.hypot(major / sa, minor / sb), dtype=np.float64)

    model = _SplitGaussian(LocalFrame(ra, dec), norm, (sa, sb), 1.0 / (2.0 * math.pi * sa * sb))
    description = (
        f"{conv.label}: ellipse a={a:.6g} deg, b={b:.6g} deg, PA={pa_f:.6g} deg at "
        f"{_pct(containment)} [{conv.meaning}; {conv.source}]; 2-D Gaussian in the "
        f"tangent equal-area plane, sigma_a={math.degrees(sa):.6g} deg, "
        f"sigma_b={math.degrees(sb):.6g} deg; region = {_pct(credible_level)} contour"
    )
    return _contour_region("ellipse", model, credible_level, description)


def _rectangle_half_width(containment: float) -> float:
    """Half-width, in sigma, of the square of a 2-D Gaussian holding ``containment``:
    each axis holds ``sqrt(containment)``."""
    return float(ndtri((1.0 + math.sqrt(containment)) / 2.0))


def region_from_box(box: Box, *, credible_level: float = 0.9) -> Region:
    """Region of asymmetric RA/Dec errors as a split 2-D Gaussian.

    Two meanings of a box, chosen by its convention (``Convention.box_shape``):

    * ``"contour"``: the offsets are the extents of the ``containment`` contour;
      the region is that contour at ``credible_level``, four quarter-ellipses
      inside the rectangle;
    * ``"rectangle"`` (IceCube, as follow-up programmes cover its ``+a -b`` errors,
      Stein et al. 2023, MNRAS 521, 5046; ``<convention>_rectangle_bbox``, e.g. MAXI
      error rectangles): the RA/Dec rectangle is the ``containment`` region itself.
      The model's axis widths are set so that the rectangle holds ``containment``
      (``sqrt(containment)`` on each axis); credible regions are the nested
      rectangles, so the level of a point is the probability of the rectangle
      through it, ``erf(t / sqrt 2)**2`` with ``t = max(|x| / s_x, |y| / s_y)``, and
      the region at ``credible_level`` is the rectangle scaled accordingly (the
      rectangle itself at the published containment, corners included).

    A convention with a systematic for statistical-only errors (IceCube tracks,
    :data:`skymaps.conventions.ICECUBE_SYSTEMATIC_R90_DEG`) adds it in quadrature
    to each on-sky offset, scaled as a Gaussian to the box's containment.

    Parameters
    ----------
    box : Box
        Centre and the four published offsets (RA offsets in RA degrees).
    credible_level : float, optional
        Probability content of the region (default 0.9).

    Returns
    -------
    Region
        ``kind="box"``; levels and densities come from the tiles.

    Examples
    --------
    >>> box = Box(77.43, 5.72, ra_minus=0.80, ra_plus=1.30, dec_minus=0.58, dec_plus=0.52,
    ...           containment=0.9, convention="icecube_track")
    >>> region = region_from_box(box)  # the rectangle, each offset with 0.2 deg added
    >>> rect = (np.hypot(0.80 * np.cos(np.radians(5.72)), 0.2)
    ...         + np.hypot(1.30 * np.cos(np.radians(5.72)), 0.2)) * (
    ...         np.hypot(0.58, 0.2) + np.hypot(0.52, 0.2))
    >>> bool(1.0 < region.area_deg2 / rect < 1.08)  # plus edge cells
    True
    """
    ra, dec = validate_center(box.ra, box.dec, what="box centre")
    offsets = {
        name: validate_radius(getattr(box, name), what=name)
        for name in ("ra_minus", "ra_plus", "dec_minus", "dec_plus")
    }
    containment = validate_containment(box.containment)
    credible_level = validate_containment(credible_level, what="credible level")
    conv = _no_systematic_model(box.convention, "box")
    cos_dec = math.cos(math.radians(dec))
    added = ""
    if conv.systematic_r90_deg is not None and cos_dec > 1e-12:
        sys_c = (conv.systematic_r90_deg * fisher.gaussian_k(containment)
                 / fisher.gaussian_k(0.9))
        offsets = {name: (math.hypot(value * cos_dec, sys_c) / cos_dec
                          if name.startswith("ra") else math.hypot(value, sys_c))
                   for name, value in offsets.items()}
        added = f" with a {sys_c:.6g} deg systematic in quadrature on sky"
    # On-sky chords from the centre to the four published extents (RA offsets are RA
    # degrees: the chord to (ra + offset, dec) is 2 cos(dec) sin(offset / 2)).
    chords = {
        "east": cos_dec * _chord(offsets["ra_plus"]),
        "west": cos_dec * _chord(offsets["ra_minus"]),
        "north": _chord(offsets["dec_plus"]),
        "south": _chord(offsets["dec_minus"]),
    }
    if min(chords["east"], chords["west"]) <= 1e-15:
        raise BadCoordinates(f"box at dec={dec} deg: RA errors have no extent at the pole")
    rectangle = conv.box_shape == "rectangle"
    k_c = _rectangle_half_width(containment) if rectangle else fisher.gaussian_k(containment)
    s_east, s_west, s_north, s_south = (chords[side] / k_c
                                        for side in ("east", "west", "north", "south"))

    def norm(x: FloatArray, y: FloatArray) -> FloatArray:
        sx = np.where(x >= 0.0, s_east, s_west)
        sy = np.where(y >= 0.0, s_north, s_south)
        return np.asarray(np.hypot(x / sx, y / sy), dtype=np.float64)

    def rect_norm(x: FloatArray, y: FloatArray) -> FloatArray:
        sx = np.where(x >= 0.0, s_east, s_west)
        sy = np.where(y >= 0.0, s_north, s_south)
        return np.asarray(np.maximum(np.abs(x) / sx, np.abs(y) / sy), dtype=np.float64)

    model = _SplitGaussian(LocalFrame(ra, dec), norm, (s_east, s_west, s_north, s_south),
                           (2.0 / math.pi) / ((s_east + s_west) * (s_north + s_south)),
                           rect_norm if rectangle else None)
    published = (
        f"{conv.label}: RA +{offsets['ra_plus']:.6g}/-{offsets['ra_minus']:.6g} deg, "
        f"Dec +{offsets['dec_plus']:.6g}/-{offsets['dec_minus']:.6g} deg at "
        f"{_pct(containment)}{added} [{conv.meaning}; {conv.source}]; split 2-D Gaussian "
        "in the tangent equal-area plane (RA offsets times cos(dec))"
    )
    if not rectangle:
        return _contour_region("box", model, credible_level, published + (
            f" whose {_pct(containment)} contour passes through the four extents; region "
            f"= {_pct(credible_level)} contour (four quarter-ellipses, inside the "
            "published RA/Dec rectangle)"))

    scale = _rectangle_half_width(credible_level) / k_c
    ra_lo = ra - offsets["ra_minus"] * scale
    ra_hi = ra + offsets["ra_plus"] * scale
    if ra_hi - ra_lo >= 360.0:
        raise BadCoordinates(f"box {_pct(credible_level)} rectangle spans all right ascensions")
    corners = SkyCoord([[ra_lo, max(-90.0, dec - offsets["dec_minus"] * scale)],
                        [ra_hi, min(90.0, dec + offsets["dec_plus"] * scale)]], unit="deg")

    def cover(order: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        cells = np.asarray(MOC.from_zone(corners, max_depth=order).uniq_hpx, dtype=np.int64)
        orders, ipix = lsm_moc.uniq2nest(cells)
        return np.asarray(orders, dtype=np.int64), np.asarray(ipix, dtype=np.int64)

    half_width = min(chords.values()) * scale * 180.0 / math.pi
    area = (ra_hi - ra_lo) * cos_dec * (offsets["dec_minus"] + offsets["dec_plus"]) * scale
    return _model_region("box", model, cover, half_width, area, credible_level, published + (
        f" with {math.sqrt(containment):.4g} of the probability on each axis inside the "
        f"published rectangle (which holds {_pct(containment)}); region = the rectangle "
        f"scaled to {_pct(credible_level)}"))
