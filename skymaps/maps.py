"""HEALPix probability sky maps (FITS bytes, optionally gzip) to :class:`Region`.

Accepted maps, all read by :func:`ligo.skymap.io.fits.read_sky_map` from memory
(no temporary file):

* multi-order maps (``ORDERING = NUNIQ``: ``UNIQ``, ``PROBDENSITY`` per steradian,
  optional ``DISTMU``/``DISTSIGMA``/``DISTNORM``), as LVK distributes them;
* flat ``NESTED`` or ``RING`` maps with ``PROB`` per pixel (``PROBABILITY`` in the
  Fermi GBM and IPN maps; ligo.skymap renames it) or ``PROBDENSITY``, with the same
  optional distance columns.

Distance layers
---------------
When the map has ``DISTMU``, ``DISTSIGMA`` and ``DISTNORM`` (3D GW maps), the tiles
keep them: ``Region.distance_layers`` (:class:`mm_broker.core.models.DistanceLayers`,
one entry per tile, same ranges). Non-finite ``DISTSIGMA``/``DISTNORM`` are kept as
ligo.skymap's "no distance" cell (``mu = inf``, ``sigma = 1``, ``norm = 0``).

The region
----------
Cells are ranked by probability density, highest first; the credible level of a
cell is the probability of all cells at least as dense as it, its own included:
``searched_prob`` of :func:`ligo.skymap.postprocess.crossmatch`. Cells of equal
density (the pixels of a coarse cell rasterised into a flat map) share one level,
that of the end of their run, so that a map has the same levels whether it comes
multi-order or flat and whatever the order of ties (ligo.skymap gives such pixels
the successive values of the run). The region at credible level ``c`` is the
densest cells up to the end of the run in which the cumulative probability reaches
``c`` (it holds at least ``c``). Its area exceeds ligo.skymap's interpolated
``contour_areas`` by less than the area of that last run (usually one cell).

Tiles are the cells of the map up to cumulative probability ``Limits.tile_coverage``
(0.99 by default), each with its own credible level and density (per square
degree). This bounds the tiles of a 12-million-pixel flat map to the part of the
sky that matters; positions outside the tiles are reported as level 1.0 and
density 0.0 by :mod:`skymaps.lookup`.

Checks (each raises :class:`mm_broker.core.errors.BadSkyMap` with a specific
message): empty bytes, too many bytes (compressed or not), corrupt gzip, not FITS,
unreadable or truncated FITS, no probability column, too many cells, invalid or
overlapping NUNIQ cells, NaN/infinite or negative probabilities, probabilities not
summing to 1 within ``Limits.sum_tolerance`` (otherwise they are renormalised).
"""

from __future__ import annotations

import gzip
import io
import math
import re
import warnings
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from astropy.io import fits
from astropy.io.fits.verify import VerifyError, VerifyWarning
from astropy.utils.exceptions import AstropyUserWarning
from ligo.skymap.io.fits import read_sky_map

from mm_broker.core.errors import BadSkyMap
from mm_broker.core.models import DistanceLayers, Region
from skymaps.coords import validate_containment
from skymaps.ranges import NPIX29, area_deg2, cells_to_ranges, normalise, uniq_to_ranges

__all__ = ["DEFAULT_LIMITS", "Limits", "region_from_skymap"]

_DEG2_PER_SR = (180.0 / math.pi) ** 2
_GZIP_MAGIC = b"\x1f\x8b"
_FITS_MAGIC = b"SIMPLE  ="
_PROB_COLUMNS = ("PROB", "PROBABILITY", "PROBDENSITY")
_DIST_COLUMNS = ("DISTMU", "DISTSIGMA", "DISTNORM")
# Exceptions that astropy and ligo.skymap raise on malformed FITS content
# (AssertionError: astropy's own check of a column name: not a string, or too long).
_READ_ERRORS = (OSError, ValueError, KeyError, TypeError, IndexError, OverflowError,
                AttributeError, VerifyError, AssertionError, VerifyWarning, AstropyUserWarning)


@dataclass(frozen=True)
class Limits:
    """Size limits and tolerances for decoding sky maps.

    Attributes
    ----------
    max_bytes : int
        Largest payload accepted as received (compressed or not): 64 MiB. LVK
        multi-order maps are under 1 MB, the GW190814 flat map 1.5 MB gzipped.
    max_uncompressed_bytes : int
        Largest FITS file after gunzip: 512 MiB. A flat nside-1024 map with
        distance layers is 403 MB (GW190814); this also stops gzip bombs.
    max_tiles : int
        Largest number of HEALPix cells in the map (multi-order rows or flat
        pixels): 2**26 = 67,108,864 (a flat nside-2048 map, like the IPN map of
        GRB 220617A, has 50,331,648).
    sum_tolerance : float
        Largest accepted ``|sum(prob) - 1|`` (1e-2); maps within it are renormalised.
    tile_coverage : float
        Cumulative probability up to which cells are kept as tiles (0.99).
    """

    max_bytes: int = 64 * 2**20
    max_uncompressed_bytes: int = 512 * 2**20
    max_tiles: int = 2**26
    sum_tolerance: float = 1e-2
    tile_coverage: float = 0.99


#: The limits used when none are given.
DEFAULT_LIMITS = Limits()


def _decompress(data: bytes, limits: Limits) -> bytes:
    if not data:
        raise BadSkyMap("empty sky map: 0 bytes")
    if len(data) > limits.max_bytes:
        raise BadSkyMap(f"sky map too large: {len(data)} bytes > limit {limits.max_bytes}")
    if data[:2] != _GZIP_MAGIC:
        raw = data
    else:
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
                raw = stream.read(limits.max_uncompressed_bytes + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise BadSkyMap(f"corrupt gzip stream: {exc}") from exc
    if len(raw) > limits.max_uncompressed_bytes:
        raise BadSkyMap(
            f"sky map too large once uncompressed: more than "
            f"{limits.max_uncompressed_bytes} bytes"
        )
    if not raw.startswith(_FITS_MAGIC):
        raise BadSkyMap(f"not a FITS file (starts with {raw[:16]!r})")
    return raw


def _repeat(tform: str) -> int:
    match = re.match(r"\s*(\d*)", tform)
    return int(match.group(1)) if match and match.group(1) else 1


def _table_shape(hdul: fits.HDUList) -> tuple[int, bool, str]:
    """Number of cells, whether the map is multi-order, and its probability column."""
    tables = [hdu for hdu in hdul if isinstance(hdu, fits.BinTableHDU)]
    if not tables:
        raise BadSkyMap("FITS file has no binary table: not a HEALPix sky map")
    hdu = tables[0]
    # astropy builds one column description per TFIELDS before anything else: a damaged
    # card (TFIELDS = 999999999) would allocate gigabytes. FITS allows 999 at most.
    tfields = hdu.header.get("TFIELDS", 0)
    if not isinstance(tfields, int) or isinstance(tfields, bool) or not 0 <= tfields <= 999:
        raise BadSkyMap(f"TFIELDS = {tfields!r} outside the FITS range 0-999")
    names = [str(name).upper() for name in hdu.columns.names]
    prob = next((name for name in _PROB_COLUMNS if name in names), None)
    if prob is None:
        raise BadSkyMap(f"no PROB, PROBABILITY or PROBDENSITY column (columns: {names})")
    is_moc = "UNIQ" in names or str(hdu.header.get("ORDERING", "")).upper() == "NUNIQ"
    if is_moc and ("UNIQ" not in names or prob != "PROBDENSITY"):
        raise BadSkyMap("multi-order map needs UNIQ and PROBDENSITY columns")
    tform = str(hdu.columns[names.index(prob)].format)
    return int(hdu.header.get("NAXIS2", 0)) * _repeat(tform), is_moc, prob


@dataclass(frozen=True)
class _Cells:
    """Cells of a map with probability and density per steradian.

    Multi-order maps keep one order-29 range per cell (``cell_ranges``); flat maps
    are all at ``flat_order`` with the NESTED index as cell number, so that their
    ranges are only computed for the cells that are kept.
    """

    prob: npt.NDArray[np.float64]
    density_sr: npt.NDArray[np.float64]
    meta: dict[str, Any]
    description: str
    cell_ranges: npt.NDArray[np.int64] | None = None
    flat_order: int = 0
    #: DISTMU, DISTSIGMA, DISTNORM per cell (3D maps), else None.
    dist: tuple[npt.NDArray[np.float64], ...] | None = None

    def ranges_of(self, index: npt.NDArray[np.intp]) -> npt.NDArray[np.int64]:
        if self.cell_ranges is not None:
            return self.cell_ranges[index]
        return cells_to_ranges(self.flat_order, index)

    def nonzero_by_position(self) -> npt.NDArray[np.intp]:
        """Cells with non-zero probability, in position order (checks overlaps)."""
        if self.cell_ranges is None:
            return np.flatnonzero(self.prob > 0.0)
        by_position = np.argsort(self.cell_ranges[:, 0], kind="stable")
        lo = self.cell_ranges[by_position, 0]
        hi = self.cell_ranges[by_position, 1]
        if np.any(lo[1:] < hi[:-1]):
            raise BadSkyMap("multi-order map has overlapping cells")
        return by_position[self.prob[by_position] > 0.0]


def _read_cells(raw: bytes, limits: Limits) -> _Cells:
    """Decode the FITS bytes into cells (everything astropy/ligo.skymap may raise on
    malformed content becomes :class:`BadSkyMap`)."""
    with warnings.catch_warnings():
        # Truncated or malformed files only warn in astropy: make them errors here.
        warnings.filterwarnings("error", category=VerifyWarning)
        warnings.filterwarnings("error", message="File may have been truncated",
                                category=AstropyUserWarning)
        try:
            # memmap=False: the arrays are copies and outlive the closed file.
            with fits.open(io.BytesIO(raw), memmap=False) as hdul:
                return _cells_from_hdul(hdul, limits)
        except BadSkyMap:
            raise
        except _READ_ERRORS as exc:
            raise BadSkyMap(f"unreadable FITS sky map: {type(exc).__name__}: {exc}") from exc


def _has_distances(hdul: fits.HDUList) -> bool:
    hdu = next(h for h in hdul if isinstance(h, fits.BinTableHDU))
    names = {str(name).upper() for name in hdu.columns.names}
    return all(column in names for column in _DIST_COLUMNS)


def _cells_from_hdul(hdul: fits.HDUList, limits: Limits) -> _Cells:
    n_cells, is_moc, prob_column = _table_shape(hdul)
    has_dist = _has_distances(hdul)
    if n_cells > limits.max_tiles:
        raise BadSkyMap(f"sky map has {n_cells} cells > limit {limits.max_tiles}")
    if n_cells == 0:
        raise BadSkyMap("sky map has no cells")

    if is_moc:
        table = read_sky_map(hdul, moc=True)
        uniq = np.asarray(table["UNIQ"])
        density = np.asarray(table["PROBDENSITY"], dtype=np.float64)
        try:
            ranges = uniq_to_ranges(uniq)
        except ValueError as exc:
            raise BadSkyMap(f"invalid UNIQ cells: {exc}") from exc
        area_sr = (ranges[:, 1] - ranges[:, 0]).astype(np.float64) * (4.0 * math.pi / NPIX29)
        description = f"multi-order (NUNIQ) sky map, {len(uniq)} cells"
        dist = (tuple(np.asarray(table[c], dtype=np.float64) for c in _DIST_COLUMNS)
                if has_dist else None)
        return _Cells(density * area_sr, density, dict(table.meta), description,
                      cell_ranges=ranges, dist=dist)

    is_density = prob_column == "PROBDENSITY"
    if is_density:
        # ligo.skymap reads flat maps from a PROB column only.
        next(h for h in hdul if isinstance(h, fits.BinTableHDU)).columns.change_name(
            "PROBDENSITY", "PROB")
    dist = None
    if has_dist:
        (values, *layers), meta = read_sky_map(hdul, nest=True, distances=True)
        dist = tuple(np.asarray(layer, dtype=np.float64) for layer in layers)
    else:
        values, meta = read_sky_map(hdul, nest=True)
    values = np.asarray(values, dtype=np.float64)
    npix = values.size
    nside = math.isqrt(npix // 12)
    order = nside.bit_length() - 1
    if 12 * nside * nside != npix or nside != 1 << order:
        raise BadSkyMap(f"flat map with {npix} pixels is not a HEALPix map")
    pixel_sr = 4.0 * math.pi / npix
    if is_density:
        density, prob = values, values * pixel_sr
    else:
        density, prob = values / pixel_sr, values
    ordering = "NESTED" if meta.get("nest") else "RING"
    description = f"flat {ordering} sky map, nside {nside} ({npix} pixels, {prob_column})"
    return _Cells(prob, density, dict(meta), description, flat_order=order, dist=dist)


def _validate_probabilities(cells: _Cells, limits: Limits) -> float:
    finite = np.isfinite(cells.prob)
    if not np.all(finite):
        raise BadSkyMap(f"{int(np.sum(~finite))} cells have NaN or infinite probability")
    negative = cells.prob < 0
    if np.any(negative):
        raise BadSkyMap(f"{int(np.sum(negative))} cells have negative probability "
                        f"(lowest {float(np.min(cells.prob)):.3g})")
    total = float(np.sum(cells.prob))
    if not abs(total - 1.0) <= limits.sum_tolerance:
        raise BadSkyMap(f"probabilities sum to {total:.6g}, not 1 within "
                        f"{limits.sum_tolerance:g}")
    return total


def _distance(meta: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in ("distmean", "diststd"):
        value = meta.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            out[key] = float(value)
    return out


def _layers(cells: _Cells, tile_index: npt.NDArray[np.intp],
            tile_ranges: npt.NDArray[np.int64]) -> DistanceLayers | None:
    """The distance ansatz of the tiles (ligo.skymap's "no distance" where undefined)."""
    if cells.dist is None:
        return None
    mu, sigma, norm = (layer[tile_index] for layer in cells.dist)
    bad = ~(np.isfinite(sigma) & np.isfinite(norm) & (sigma > 0) & ~np.isnan(mu))
    return DistanceLayers(
        ranges=tile_ranges,
        mu=np.where(bad, np.inf, mu),
        sigma=np.where(bad, 1.0, sigma),
        norm=np.where(bad, 0.0, norm),
    )


def region_from_skymap(
    data: bytes,
    *,
    limits: Limits = DEFAULT_LIMITS,
    credible_level: float = 0.9,
    convention: str = "generic",
) -> Region:
    """Decode a HEALPix sky map and build its credible region and tiles.

    Parameters
    ----------
    data : bytes
        FITS file, optionally gzip-compressed (multi-order or flat).
    limits : Limits, optional
        Size limits and tolerances (:data:`DEFAULT_LIMITS`).
    credible_level : float, optional
        Probability content of the region (default 0.9).
    convention : str, optional
        The mission convention named by the notice (recorded in words only: the map
        carries its own probabilities).

    Returns
    -------
    Region
        ``kind="skymap"``; ``distance`` holds ``distmean``/``diststd`` (Mpc) when the
        header gives them, ``distance_layers`` the tiles' distance ansatz when the
        map has one.

    Raises
    ------
    BadSkyMap
        See the module documentation for the list of checks.

    Examples
    --------
    A flat nside-1 map (12 pixels) with 95 % of the probability in pixel 4:

    >>> import io
    >>> from astropy.io import fits
    >>> prob = np.zeros(12)
    >>> prob[4], prob[5] = 0.95, 0.05
    >>> table = fits.BinTableHDU.from_columns([fits.Column("PROB", "D", array=prob)])
    >>> table.header.update(PIXTYPE="HEALPIX", ORDERING="NESTED", NSIDE=1,
    ...                     INDXSCHM="IMPLICIT", COORDSYS="C")
    >>> buffer = io.BytesIO()
    >>> fits.HDUList([fits.PrimaryHDU(), table]).writeto(buffer)
    >>> region = region_from_skymap(buffer.getvalue())
    >>> round(region.area_deg2, 1), region.tile_credible_level.tolist()
    (3437.7, [0.95, 1.0])
    """
    credible_level = float(validate_containment(credible_level, what="credible level"))
    raw = _decompress(data, limits)
    cells = _read_cells(raw, limits)
    total = _validate_probabilities(cells, limits)
    prob = cells.prob / total
    density = cells.density_sr / total

    # Highest density first. The level of a cell is the probability of all cells at
    # least as dense: cells of equal density (a coarse cell rasterised into pixels)
    # share the level at the end of their run, whatever the order inside it.
    nonzero = cells.nonzero_by_position()
    ranked = nonzero[np.argsort(-density[nonzero], kind="stable")]
    cumulative = np.cumsum(prob[ranked])
    ranked_density = density[ranked]
    run_ends = np.flatnonzero(np.append(ranked_density[1:] != ranked_density[:-1], True))
    level = cumulative[run_ends[np.searchsorted(run_ends, np.arange(len(ranked)))]]

    def cells_up_to(target: float) -> int:
        """Number of ranked cells up to the end of the run that reaches ``target``."""
        first = min(int(np.searchsorted(cumulative, target, side="left")), len(ranked) - 1)
        return int(run_ends[np.searchsorted(run_ends, first)]) + 1

    n_region = cells_up_to(credible_level)
    n_tiles = max(cells_up_to(limits.tile_coverage), n_region)

    ranges = normalise(cells.ranges_of(ranked[:n_region]))
    tiles = ranked[:n_tiles]
    tile_ranges = cells.ranges_of(tiles)
    tile_order = np.argsort(tile_ranges[:, 0], kind="stable")
    tile_index = tiles[tile_order]
    tile_level = level[:n_tiles][tile_order]
    sorted_tiles = np.ascontiguousarray(tile_ranges[tile_order])

    description = (
        f"{cells.description}; convention {convention!r}; probabilities summed to "
        f"{total:.9g} and were renormalised; {100 * credible_level:.4g} % credible region = "
        f"highest-density cells until the cumulative probability reaches "
        f"{credible_level:g} ({n_region} cells); tiles = cells up to cumulative "
        f"{limits.tile_coverage:g} ({n_tiles} cells)"
    )
    return Region(
        kind="skymap",
        ranges=ranges,
        area_deg2=area_deg2(ranges),
        credible_level=credible_level,
        tile_ranges=sorted_tiles,
        tile_credible_level=np.minimum(tile_level, 1.0),
        tile_density_deg2=density[tile_index] / _DEG2_PER_SR,
        convention=description,
        distance=_distance(cells.meta),
        distance_layers=_layers(cells, tile_index, sorted_tiles),
    )
