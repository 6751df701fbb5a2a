"""Regions as IVOA MOCs (FITS and JSON, written and read by :mod:`mocpy`), and
regions made from bare ranges.

A MOC carries coverage only. A region made back from a MOC
(:func:`region_from_ranges`) therefore has one tile per range, all at the region's
credible level, with the uniform density ``credible_level / area``.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import numpy.typing as npt
from mocpy import MOC

from mm_broker.core.models import IPIX_DTYPE, MAX_ORDER, Region
from skymaps.coords import validate_containment
from skymaps.ranges import area_deg2, normalise

__all__ = [
    "moc_order",
    "region_from_moc_fits",
    "region_from_moc_json",
    "region_from_ranges",
    "region_to_moc",
    "region_to_moc_fits",
    "region_to_moc_json",
]


def moc_order(ranges: npt.ArrayLike) -> int:
    """Finest HEALPix order needed to describe the ranges exactly.

    Examples
    --------
    >>> moc_order([[0, 4**29]])  # one order-0 cell
    0
    >>> moc_order([[0, 4]])  # one order-28 cell
    28
    """
    r = normalise(ranges)
    if len(r) == 0:
        return 0
    bounds = r.ravel()
    bounds = bounds[bounds != 0]
    if len(bounds) == 0:
        return 0
    # Trailing zero bits of every bound: lowest set bit of their bitwise OR.
    combined = int(np.bitwise_or.reduce(bounds))
    trailing = (combined & -combined).bit_length() - 1
    return max(0, MAX_ORDER - trailing // 2)


def region_to_moc(region: Region) -> MOC:
    """The region's ranges as a :class:`mocpy.MOC` at the finest order they need.

    Examples
    --------
    >>> from mm_broker.core.models import Circle
    >>> from skymaps.circles import region_from_circle
    >>> region = region_from_circle(Circle(10.0, 20.0, 1.0, 0.9))
    >>> moc = region_to_moc(region)
    >>> bool(abs(moc.sky_fraction * 41252.96 - region.area_deg2) < 1e-6)
    True
    """
    return MOC.from_depth29_ranges(moc_order(region.ranges),
                                   np.asarray(region.ranges, dtype=IPIX_DTYPE))


def region_to_moc_fits(region: Region) -> bytes:
    """The region as an IVOA MOC 2.0 FITS file (bytes).

    Examples
    --------
    >>> from mm_broker.core.models import Circle
    >>> from skymaps.circles import region_from_circle
    >>> data = region_to_moc_fits(region_from_circle(Circle(10.0, 20.0, 1.0, 0.9)))
    >>> data[:9]
    b'SIMPLE  ='
    """
    hdul = region_to_moc(region).serialize(format="fits")
    buffer = io.BytesIO()
    hdul.writeto(buffer)
    return buffer.getvalue()


def region_to_moc_json(region: Region) -> str:
    """The region as a MOC in JSON (``{"order": [ipix, ...], ...}``, as in Aladin).

    Examples
    --------
    >>> from mm_broker.core.models import Circle
    >>> from skymaps.circles import region_from_circle
    >>> text = region_to_moc_json(region_from_circle(Circle(10.0, 20.0, 1.0, 0.9)))
    >>> sorted(json.loads(text))[:2]
    ['10', '11']
    """
    content: dict[str, Any] = region_to_moc(region).serialize(format="json")
    return json.dumps(content, sort_keys=True)


def region_from_ranges(
    ranges: npt.ArrayLike,
    *,
    credible_level: float = 0.9,
    kind: str = "moc",
    convention: str = "coverage only (no probability model): uniform density",
) -> Region:
    """A region from bare ranges: one tile per range, uniform density.

    Parameters
    ----------
    ranges : array_like, shape (n, 2)
        Order-29 ranges (normalised here).
    credible_level : float, optional
        Probability content the coverage stands for (default 0.9).
    kind : str, optional
        ``Region.kind`` to record (default ``"moc"``).
    convention : str, optional
        ``Region.convention`` to record.

    Examples
    --------
    >>> region = region_from_ranges([[0, 4**29]])
    >>> region.kind, round(region.area_deg2, 1), region.tile_credible_level.tolist()
    ('moc', 3437.7, [0.9])
    """
    credible_level = validate_containment(credible_level, what="credible level")
    r = normalise(ranges)
    area = area_deg2(r)
    density = credible_level / area if area > 0 else 0.0
    return Region(
        kind=kind,
        ranges=r,
        area_deg2=area,
        credible_level=credible_level,
        tile_ranges=r.copy(),
        tile_credible_level=np.full(len(r), credible_level, dtype=np.float64),
        tile_density_deg2=np.full(len(r), density, dtype=np.float64),
        convention=convention,
    )


def region_from_moc_fits(data: bytes, *, credible_level: float = 0.9) -> Region:
    """A region from IVOA MOC FITS bytes (see :func:`region_from_ranges`).

    Examples
    --------
    >>> back = region_from_moc_fits(region_to_moc_fits(region_from_ranges([[0, 4**29]])))
    >>> back.ranges.tolist() == [[0, 4**29]]
    True
    """
    # A BytesIO keeps mocpy from treating the argument as a path or a URL.
    moc = MOC.from_fits(io.BytesIO(data))
    return region_from_ranges(moc.to_depth29_ranges, credible_level=credible_level)


def region_from_moc_json(text: str, *, credible_level: float = 0.9) -> Region:
    """A region from MOC JSON text (see :func:`region_from_ranges`).

    Examples
    --------
    >>> region_from_moc_json('{"0": [0]}').ranges.tolist() == [[0, 4**29]]
    True
    """
    moc = MOC.from_json(json.loads(text))
    return region_from_ranges(moc.to_depth29_ranges, credible_level=credible_level)
