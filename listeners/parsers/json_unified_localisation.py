"""The localisation blocks of GCN unified-schema notices (``core/Localization``).

:func:`localisation` reads ``ra``/``dec``/``ra_dec_error`` (radius or ``[a, b, PA]``),
``healpix_file`` (base64 FITS), ``healpix_url`` and MAXI's
``rectangular_error_corners``, in the order of preference documented in
:mod:`listeners.parsers.json_gcn_unified`; positions pass the one position check
(:func:`mm_broker.core.position.check_position`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from listeners.parsers.json_common import (
    as_number,
    check_probability,
    check_radius,
    has,
    opt_bool,
    opt_number,
    opt_str,
    req_number,
)
from listeners.parsers.json_unified_spec import MissionSpec
from listeners.parsers.json_values import decode_fits_base64
from mm_broker.core.errors import BadCoordinates, NoPosition, SchemaError
from mm_broker.core.models import (
    Box,
    Circle,
    Ellipse,
    Localisation,
    SkyMap,
)
from mm_broker.core.position import check_position


def _containment(doc: Mapping[str, Any], spec: MissionSpec, ctx: str) -> float:
    value = opt_number(doc, "containment_probability", ctx)
    if value is None:
        return spec.containment_default
    return check_probability(value, "containment_probability")


def _systematic(doc: Mapping[str, Any], spec: MissionSpec, ctx: str) -> tuple[float | None, str]:
    included = opt_bool(doc, "systematic_included", ctx)
    if included is None:
        included = spec.systematic_included_default
    if included:
        return None, spec.convention
    return spec.systematic_deg, spec.convention_stat_only or spec.convention


def error_region(
    error: Any,
    ra: float,
    dec: float,
    containment: float,
    *,
    systematic_deg: float | None,
    convention: str,
    key: str = "ra_dec_error",
) -> Circle | Ellipse:
    """Turn a unified ``ra_dec_error`` (radius or ``[a, b, PA]``) into a region.

    ``[a]`` is a circle; ``[a, b]`` an ellipse with PA 0; ``[a, b, PA]`` an ellipse
    (PA east of north, degrees). ``b`` defaults to ``a`` per the schema. A "semi-minor"
    axis longer than the "semi-major" one (as in the schema's own core example,
    ``[0.5, 0.8, 0]``) is the same ellipse with the axes swapped and PA + 90 deg; the
    PA is returned in [0, 180).

    Raises
    ------
    BadCoordinates
        Negative/non-finite axes, more than three values.
    NoPosition
        A zero radius.
    """
    if isinstance(error, list):
        if not 1 <= len(error) <= 3:
            raise BadCoordinates(f"{key} must have 1 to 3 values, got {len(error)}")
        values = [as_number(v, f"{key}[{i}]") for i, v in enumerate(error)]
        a = check_radius(values[0], f"{key}[0]")
        if len(values) == 1:
            return Circle(ra, dec, a, containment, systematic_deg, convention)
        b = check_radius(values[1], f"{key}[1]")
        pa = values[2] if len(values) == 3 else 0.0
        if b > a:
            # The same ellipse, written with its axes in the schema's order.
            a, b, pa = b, a, pa + 90.0
        return Ellipse(ra, dec, a, b, pa % 180.0, containment, convention)
    radius = check_radius(as_number(error, key), key)
    return Circle(ra, dec, radius, containment, systematic_deg, convention)


def box_from_corners(
    corners: Any, ra: float, dec: float, containment: float, convention: str
) -> Box:
    """The RA/Dec box around (``ra``, ``dec``) that bounds a rectangle's corners.

    MAXI gives a rotated rectangle as four corners; :class:`Box` is axis-aligned, so
    the box over-covers the rectangle (containment at least the stated one).

    Raises
    ------
    SchemaError
        Not a list of ``[ra, dec]`` pairs.
    BadCoordinates
        A corner off the sphere, or a degenerate rectangle.
    """
    key = "rectangular_error_corners"
    if not isinstance(corners, list) or len(corners) < 3:
        raise SchemaError(f"{key} must be an array of at least 3 [ra, dec] corners")
    d_ra: list[float] = []
    d_dec: list[float] = []
    for i, corner in enumerate(corners):
        if not isinstance(corner, list) or len(corner) != 2:
            raise SchemaError(f"{key}[{i}] must be an [ra, dec] pair")
        c_ra, c_dec = check_position(
            as_number(corner[0], f"{key}[{i}][0]"), as_number(corner[1], f"{key}[{i}][1]"), key
        )
        d_ra.append((c_ra - ra + 180.0) % 360.0 - 180.0)
        d_dec.append(c_dec - dec)
    ra_minus, ra_plus = max(0.0, -min(d_ra)), max(0.0, max(d_ra))
    dec_minus, dec_plus = max(0.0, -min(d_dec)), max(0.0, max(d_dec))
    if ra_minus + ra_plus == 0.0 or dec_minus + dec_plus == 0.0:
        raise BadCoordinates(f"{key} describe a degenerate rectangle")
    return Box(ra, dec, ra_minus, ra_plus, dec_minus, dec_plus, containment, convention)


def localisation(doc: Mapping[str, Any], spec: MissionSpec, ctx: str = "") -> Localisation:
    """The localisation of a core/Localization block (see module docstring for order).

    Raises
    ------
    NoPosition
        No usable position.
    BadCoordinates, BadSkyMap, SchemaError
        Invalid values.
    """
    url = opt_str(doc, "healpix_url", ctx)
    if has(doc, "healpix_file"):
        data = decode_fits_base64(
            doc["healpix_file"], f"{ctx}.healpix_file" if ctx else "healpix_file"
        )
        return SkyMap(data=data, url=url, convention=spec.skymap_convention)
    if has(doc, "ra") != has(doc, "dec"):
        given, other = ("ra", "dec") if has(doc, "ra") else ("dec", "ra")
        raise SchemaError(f"{given!r} given without {other!r}")
    if has(doc, "ra"):
        ra, dec = check_position(req_number(doc, "ra", ctx), req_number(doc, "dec", ctx), ctx)
        containment = _containment(doc, spec, ctx)
        if has(doc, "ra_dec_error"):
            systematic_deg, convention = _systematic(doc, spec, ctx)
            return error_region(
                doc["ra_dec_error"],
                ra,
                dec,
                containment,
                systematic_deg=systematic_deg,
                convention=convention,
            )
        if has(doc, "rectangular_error_corners"):
            return box_from_corners(
                doc["rectangular_error_corners"],
                ra,
                dec,
                containment,
                f"{spec.convention}_rectangle_bbox",
            )
        if url is not None:
            return SkyMap(data=None, url=url, convention=spec.skymap_convention)
        raise NoPosition(f"ra/dec ({ra:g}, {dec:g}) given without ra_dec_error or sky map")
    if url is not None:
        return SkyMap(data=None, url=url, convention=spec.skymap_convention)
    raise NoPosition("no ra/dec, healpix_file or healpix_url")
