"""Picture of an event: its localisation and the counterpart candidates, as a PNG.

The region is drawn as the 50 % and 90 % credible contours of a HEALPix sky map
(multi-order or flat, from the FITS bytes the mission sent), as the error circle
(90 % radius, and 50 % when known), or as the outline of any other region given as
order-29 HEALPix ranges. Candidates are marked and labelled by rank. The projection
is ligo.skymap's ``astro zoom`` when the region and the candidates fit within
:data:`ZOOM_LIMIT_DEG` of the region's centre, ``astro hours mollweide`` otherwise.
Matplotlib runs with the Agg backend (no display needed).

Examples
--------
::

    info = read_map(Path("S240115ak.multiorder.fits").read_bytes())
    plot_event(info, candidates, "S240115ak.png")
    plot_event(CircleRegion(ra=10.0, dec=-20.0, radius_deg=3.1), candidates, "grb.png")
"""

from __future__ import annotations

import gzip
import io
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from mm_broker.core.models import MAX_ORDER, Region

#: Largest zoom radius, degrees; a region (or candidate) farther out gives an all-sky plot.
ZOOM_LIMIT_DEG = 30.0

#: Finest HEALPix resolution used for drawing flat maps and ranges (nside 1024, 3.4').
PLOT_ORDER = 10

#: Candidates labelled with their rank (all are marked).
MAX_LABELS = 20

#: Colour of candidate markers and labels (drawn with a white halo: readable on the map).
CANDIDATE_COLOR = "#0044dd"


@dataclass(frozen=True)
class CircleRegion:
    """An error circle.

    Attributes
    ----------
    ra, dec : float
        Centre, ICRS degrees.
    radius_deg : float
        90 % radius, degrees.
    radius50_deg : float or None
        50 % radius, degrees, when the error model gives one.
    """

    ra: float
    dec: float
    radius_deg: float
    radius50_deg: float | None = None


@dataclass(frozen=True, eq=False)
class MultiOrderMap:
    """A multi-order HEALPix sky map: NUNIQ indices and probability per steradian."""

    uniq: npt.NDArray[np.int64]
    probdensity: npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class FlatMap:
    """A single-resolution NESTED HEALPix map of probability per pixel."""

    prob: npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class RangesRegion:
    """Any region as sorted order-29 nested ``[lo, hi)`` ranges (``Region.ranges``)."""

    ranges: npt.NDArray[np.uint64]


RegionInfo = CircleRegion | MultiOrderMap | FlatMap | RangesRegion


@dataclass(frozen=True)
class EventPlot:
    """What :func:`plot_event` drew.

    Attributes
    ----------
    path : Path
        The PNG written.
    projection : {"astro zoom", "astro hours mollweide"}
    center_ra, center_dec : float
        Centre of the region, degrees.
    radius_deg : float or None
        Zoom radius (``None`` for all-sky).
    area90_deg2 : float
        Area of the 90 % region (of the region itself for circles and ranges).
    n_candidates : int
    """

    path: Path
    projection: str
    center_ra: float
    center_dec: float
    radius_deg: float | None
    area90_deg2: float
    n_candidates: int


def _ligo() -> Any:
    """Import ligo.skymap's plotting (registers the ``astro`` projections) quietly:
    its imports emit deprecation warnings of its own dependencies."""
    import matplotlib

    matplotlib.use("Agg")
    from astropy.utils.exceptions import AstropyDeprecationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyDeprecationWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import ligo.skymap.plot as ligo_plot
    return ligo_plot


# --------------------------------------------------------------------------- #
# Reading
# --------------------------------------------------------------------------- #


def read_map(data: bytes) -> MultiOrderMap | FlatMap:
    """Read a FITS sky map (multi-order or flat, optionally gzip-compressed).

    Flat maps finer than :data:`PLOT_ORDER` are downsampled (probability summed).
    """
    from astropy.io import fits

    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    with fits.open(io.BytesIO(data)) as hdus:
        multiorder = any("UNIQ" in getattr(h, "columns", fits.ColDefs([])).names
                         for h in hdus[1:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from ligo.skymap.io import read_sky_map
    if multiorder:
        table = read_sky_map(io.BytesIO(data), moc=True)
        return MultiOrderMap(np.asarray(table["UNIQ"], dtype=np.int64),
                             np.asarray(table["PROBDENSITY"], dtype=np.float64))
    prob, _meta = read_sky_map(io.BytesIO(data), moc=False, nest=True)
    prob = np.asarray(prob, dtype=np.float64)
    nside_max = 1 << PLOT_ORDER
    if len(prob) > 12 * nside_max**2:
        import healpy as hp

        prob = hp.ud_grade(prob, nside_max, order_in="NESTED", order_out="NESTED", power=-2)
    return FlatMap(prob)


def region_info(region: Region, skymap_fits: bytes | None = None) -> RegionInfo:
    """What to draw for a :class:`mm_broker.core.models.Region`.

    Parameters
    ----------
    region : Region
    skymap_fits : bytes, optional
        The sky map as the mission sent it (for ``kind == "skymap"``); without it,
        the region's outline is drawn from its ranges.
    """
    if region.kind == "circle" and region.center_ra is not None \
            and region.center_dec is not None and region.radius90_deg is not None:
        r50 = None if region.sigma_deg is None else region.sigma_deg * math.sqrt(2 * math.log(2))
        return CircleRegion(region.center_ra, region.center_dec, region.radius90_deg, r50)
    if region.kind == "skymap" and skymap_fits is not None:
        return read_map(skymap_fits)
    return RangesRegion(np.asarray(region.ranges, dtype=np.uint64))


# --------------------------------------------------------------------------- #
# Geometry helpers
# --------------------------------------------------------------------------- #


def _unit(ra: npt.ArrayLike, dec: npt.ArrayLike) -> npt.NDArray[np.float64]:
    a, d = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)], axis=-1)


def _sep(ra0: float, dec0: float, ra: npt.ArrayLike, dec: npt.ArrayLike
         ) -> npt.NDArray[np.float64]:
    dots = _unit(ra, dec) @ _unit(ra0, dec0)
    return np.degrees(np.arccos(np.clip(dots, -1.0, 1.0)))


def _flat_centres(nside: int, ipix: npt.NDArray[np.int64]
                  ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    import healpy as hp

    ra, dec = hp.pix2ang(nside, ipix, nest=True, lonlat=True)
    return np.asarray(ra), np.asarray(dec)


@dataclass
class _Layer:
    """Everything needed to draw a region and choose the view."""

    center: tuple[float, float]
    extent_deg: float
    area90_deg2: float
    contour: tuple[Any, dict[str, Any]] | None = None
    image: tuple[Any, dict[str, Any]] | None = None
    circle: CircleRegion | None = None
    levels: tuple[float, ...] = (50.0, 90.0)


def _levels_greedy(density: npt.NDArray[np.float64], prob: npt.NDArray[np.float64]
                   ) -> npt.NDArray[np.float64]:
    """Credible level (%) of each cell: cumulated probability of denser cells."""
    order = np.argsort(-density, kind="stable")
    cum = np.cumsum(prob[order])
    levels = np.empty_like(cum)
    levels[order] = cum / cum[-1]
    return 100.0 * levels


def _layer_moc(m: MultiOrderMap) -> _Layer:
    from astropy.table import Table
    from ligo.skymap.moc import uniq2ang, uniq2pixarea

    area_sr = uniq2pixarea(m.uniq)
    cls = _levels_greedy(m.probdensity, m.probdensity * area_sr)
    inside = cls <= 90.0
    theta, phi = uniq2ang(m.uniq[inside])
    ra, dec = np.degrees(phi), 90.0 - np.degrees(theta)
    best = int(np.argmax(m.probdensity))
    btheta, bphi = uniq2ang(m.uniq[best : best + 1])
    center = (float(np.degrees(bphi[0])), float(90.0 - np.degrees(btheta[0])))
    cell = np.degrees(np.sqrt(area_sr[inside])) if inside.any() else np.array([0.0])
    extent = float(np.max(_sep(*center, ra, dec) + cell)) if inside.any() else 180.0
    area90 = float(np.sum(area_sr[inside]) * (180 / math.pi) ** 2)
    sr_to_deg2 = (math.pi / 180) ** 2
    contour = (Table({"UNIQ": m.uniq, "CLS": cls}), "ICRS")
    image = (Table({"UNIQ": m.uniq, "P": m.probdensity * sr_to_deg2}), "ICRS")
    return _Layer(center, extent, area90,
                  contour=(contour, {"order": "nearest-neighbor"}),
                  image=(image, {"order": "nearest-neighbor"}))


def _layer_flat(m: FlatMap) -> _Layer:
    nside = int(round(math.sqrt(len(m.prob) / 12)))
    pix_deg2 = 41252.96125 / len(m.prob)
    cls = _levels_greedy(m.prob, m.prob)
    inside = np.flatnonzero(cls <= 90.0)
    ra, dec = _flat_centres(nside, inside)
    center_ra, center_dec = _flat_centres(nside, np.array([int(np.argmax(m.prob))]))
    center = (float(center_ra[0]), float(center_dec[0]))
    extent = float(np.max(_sep(*center, ra, dec))) + math.sqrt(pix_deg2) if len(inside) else 180.0
    return _Layer(center, extent, len(inside) * pix_deg2,
                  contour=((cls, "ICRS"), {"nested": True}),
                  image=((m.prob / pix_deg2, "ICRS"), {"nested": True}))


def _layer_ranges(r: RangesRegion) -> _Layer:
    order = PLOT_ORDER
    shift = np.uint64(2 * (MAX_ORDER - order))
    npix = 12 * 4**order
    ranges = np.asarray(r.ranges, dtype=np.uint64).reshape(-1, 2)
    if len(ranges) == 0:
        raise ValueError("empty region: no ranges to draw")
    lo = (ranges[:, 0] >> shift).astype(np.int64)
    hi = ((ranges[:, 1] - np.uint64(1)) >> shift).astype(np.int64) + 1
    diff = np.zeros(npix + 1, dtype=np.int64)
    np.add.at(diff, lo, 1)
    np.add.at(diff, hi, -1)
    mask = np.cumsum(diff[:-1]) > 0
    pix = np.flatnonzero(mask)
    ra, dec = _flat_centres(1 << order, pix)
    mean = _unit(ra, dec).sum(axis=0)
    center = (float(np.degrees(np.arctan2(mean[1], mean[0])) % 360.0),
              float(np.degrees(np.arcsin(np.clip(mean[2] / np.linalg.norm(mean), -1, 1)))))
    pix_deg2 = 41252.96125 / npix
    extent = float(np.max(_sep(*center, ra, dec))) + math.sqrt(pix_deg2)
    return _Layer(center, extent, len(pix) * pix_deg2,
                  contour=((mask.astype(np.float64), "ICRS"), {"nested": True}),
                  levels=(0.5,))


def _layer(info: RegionInfo) -> _Layer:
    if isinstance(info, CircleRegion):
        return _Layer((info.ra % 360.0, info.dec), info.radius_deg,
                      2 * math.pi * (1 - math.cos(math.radians(info.radius_deg)))
                      * (180 / math.pi) ** 2, circle=info)
    if isinstance(info, MultiOrderMap):
        return _layer_moc(info)
    if isinstance(info, FlatMap):
        return _layer_flat(info)
    if isinstance(info, RangesRegion):
        return _layer_ranges(info)
    raise TypeError(f"cannot draw a {type(info).__name__}")


# --------------------------------------------------------------------------- #
# Drawing
# --------------------------------------------------------------------------- #


def plot_event(region_info: RegionInfo, candidates: Sequence[Mapping[str, Any]],
               out_png: str | Path, *, title: str | None = None,
               projection: Literal["auto", "allsky", "zoom"] = "auto",
               dpi: int = 120) -> EventPlot:
    """Draw an event's region and its counterpart candidates to a PNG.

    Parameters
    ----------
    region_info : CircleRegion, MultiOrderMap, FlatMap or RangesRegion
        The region (:func:`read_map` for FITS bytes, :func:`region_info` for a
        stored :class:`~mm_broker.core.models.Region`).
    candidates : sequence of mapping
        Counterpart records (``ra``, ``dec``, ``rank``; ``object_id``,
        ``event_id``, ``region_version`` used for labels and the title).
    out_png : path
    title : str, optional
        Default: event id and region version of the candidates.
    projection : {"auto", "allsky", "zoom"}
        ``auto`` zooms when everything lies within :data:`ZOOM_LIMIT_DEG`.
    dpi : int

    Returns
    -------
    EventPlot
    """
    _ligo()
    import astropy.units as u
    import matplotlib.pyplot as plt
    from astropy.coordinates import SkyCoord
    from astropy.visualization.wcsaxes import SphericalCircle
    from matplotlib import patheffects
    from matplotlib.lines import Line2D

    layer = _layer(region_info)
    ra_c = np.array([float(c["ra"]) for c in candidates])
    dec_c = np.array([float(c["dec"]) for c in candidates])
    reach = layer.extent_deg
    if len(candidates):
        reach = max(reach, float(np.max(_sep(*layer.center, ra_c, dec_c))))
    radius = min(max(1.25 * reach, 1.0 / 60.0), 90.0)
    zoom = projection == "zoom" or (projection == "auto" and radius <= ZOOM_LIMIT_DEG)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)

    fig = plt.figure(figsize=(7.0, 6.2) if zoom else (9.0, 5.6), dpi=dpi)
    try:
        if zoom:
            center = SkyCoord(layer.center[0] * u.deg, layer.center[1] * u.deg)
            ax: Any = plt.axes(projection="astro zoom", center=center, radius=radius * u.deg)
            for coord, label in ((ax.coords[0], "Right ascension"), (ax.coords[1], "Declination")):
                coord.set_axislabel(label)
            ax.coords[0].set_ticklabel_position("b")
            ax.coords[0].set_axislabel_position("b")
            proj_name = "astro zoom"
        else:
            ax = plt.axes(projection="astro hours mollweide")  # same type as above: Any
            proj_name = "astro hours mollweide"
        ax.grid(alpha=0.4)
        world = ax.get_transform("world")
        handles: list[Any] = []
        with np.errstate(invalid="ignore"):
            if layer.image is not None:
                data, kw = layer.image
                ax.imshow_hpx(data, cmap="cylon", **kw)
            if layer.contour is not None:
                data, kw = layer.contour
                styles = ["--", "-"] if len(layer.levels) == 2 else ["-"]
                ax.contour_hpx(data, levels=list(layer.levels), colors="k",
                               linewidths=1.0, linestyles=styles, **kw)
                names = ["50 %", "90 %"] if len(layer.levels) == 2 else ["region"]
                handles += [Line2D([], [], color="k", ls=s, label=n)
                            for s, n in zip(styles, names, strict=True)]
        if layer.circle is not None:
            c = layer.circle
            ax.add_patch(SphericalCircle((c.ra * u.deg, c.dec * u.deg), c.radius_deg * u.deg,
                                         transform=world, edgecolor="tab:blue",
                                         facecolor="none", lw=1.5))
            handles.append(Line2D([], [], color="tab:blue", label="90 %"))
            if c.radius50_deg is not None:
                ax.add_patch(SphericalCircle((c.ra * u.deg, c.dec * u.deg),
                                             c.radius50_deg * u.deg, transform=world,
                                             edgecolor="tab:blue", facecolor="none",
                                             lw=1.0, ls="--"))
                handles.append(Line2D([], [], color="tab:blue", ls="--", label="50 %"))
        if len(candidates):
            halo = [patheffects.withStroke(linewidth=3, foreground="white")]
            ax.plot(ra_c, dec_c, ls="none", marker="o", mfc="none", mec=CANDIDATE_COLOR, ms=7,
                    mew=1.5, transform=world, path_effects=halo)
            handles.append(Line2D([], [], ls="none", marker="o", mfc="none",
                                  mec=CANDIDATE_COLOR, label=f"candidates ({len(candidates)})"))
            ranked = sorted(zip(candidates, ra_c, dec_c, strict=True),
                            key=lambda t: int(t[0]["rank"]))
            for cand, ra, dec in ranked[:MAX_LABELS]:
                ax.text(ra, dec, f"  {cand['rank']}", transform=world,
                        color=CANDIDATE_COLOR, fontsize=9, fontweight="bold", ha="left",
                        va="center", path_effects=halo)
        if title is None and candidates and "event_id" in candidates[0]:
            first = candidates[0]
            title = str(first["event_id"])
            if first.get("region_version") is not None:
                title += f"  region v{first['region_version']}"
        fig.suptitle(f"{title or ''}   (90 % area {layer.area90_deg2:.4g} deg²)", fontsize=11)
        if handles:
            fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8,
                       frameon=False)
        fig.savefig(out, dpi=dpi)
    finally:
        plt.close(fig)
    return EventPlot(out, proj_name, layer.center[0], layer.center[1],
                     radius if zoom else None, layer.area90_deg2, len(candidates))
