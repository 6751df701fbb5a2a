"""Coordinates and error sizes checked once, at the edge of :mod:`skymaps`.

Everything past these functions may assume finite ICRS degrees with
``0 <= ra < 360`` and ``-90 <= dec <= 90``.

* Positions and radii that come from notices raise
  :class:`mm_broker.core.errors.BadCoordinates` (the notice is rejected with a
  reason).
* Query positions (alerts) raise :class:`ValueError`: a bad alert position is not a
  notice problem.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from mm_broker.core.errors import BadCoordinates

__all__ = [
    "normalise_ra",
    "validate_center",
    "validate_containment",
    "validate_query",
    "validate_radius",
]

#: Right ascensions are accepted in ``[-360, 360]`` and wrapped to ``[0, 360)``.
#: Anything further out is a missing-value code (``-999``), not an angle.
RA_ACCEPTED = 360.0

#: Smallest error radius accepted (degrees): 1e-7 deg = 0.36 mas, far below any
#: astrometric error; smaller values are corrupt and overflow the error models.
MIN_RADIUS_DEG = 1e-7

#: A published radius of exactly 360 degrees means "no position" (SNEWS).
SNEWS_NO_POSITION_RADIUS = 360.0


def normalise_ra(ra: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Wrap right ascensions to ``[0, 360)`` degrees.

    Examples
    --------
    >>> normalise_ra([-10.0, 360.0, 370.0, -1e-20]).tolist()
    [350.0, 0.0, 10.0, 0.0]
    """
    wrapped = np.mod(np.asarray(ra, dtype=np.float64), 360.0)
    # np.mod(-1e-20, 360) rounds to 360.0, outside [0, 360).
    return np.where(wrapped >= 360.0, 0.0, wrapped)


def validate_center(ra: float, dec: float, *, what: str = "position") -> tuple[float, float]:
    """Check a notice position and return it with RA wrapped to ``[0, 360)``.

    Raises
    ------
    BadCoordinates
        NaN or infinite coordinates, ``dec`` outside ``[-90, 90]``, ``ra`` outside
        ``[-360, 360]``.

    Examples
    --------
    >>> validate_center(-30.0, 45.0)
    (330.0, 45.0)
    """
    try:
        ra_f, dec_f = float(ra), float(dec)
    except (TypeError, ValueError) as exc:
        raise BadCoordinates(f"{what}: ra={ra!r}, dec={dec!r} are not numbers") from exc
    if not (math.isfinite(ra_f) and math.isfinite(dec_f)):
        raise BadCoordinates(f"{what}: ra={ra_f!r}, dec={dec_f!r} must be finite")
    if not -90.0 <= dec_f <= 90.0:
        raise BadCoordinates(f"{what}: dec={dec_f!r} deg is outside [-90, 90]")
    if not -RA_ACCEPTED <= ra_f <= RA_ACCEPTED:
        raise BadCoordinates(f"{what}: ra={ra_f!r} deg is outside [-360, 360]")
    return float(normalise_ra(ra_f)), dec_f


def validate_radius(radius: float, *, what: str = "radius") -> float:
    """Check a published error radius (or semi-axis) in degrees.

    Raises
    ------
    BadCoordinates
        Not finite, ``<= 0`` (e.g. the ``0`` or ``-1`` of notices without an error),
        ``360`` (the SNEWS "no position" code), or otherwise ``>= 180``.

    Examples
    --------
    >>> validate_radius(3.97)
    3.97
    """
    try:
        r = float(radius)
    except (TypeError, ValueError) as exc:
        raise BadCoordinates(f"{what}={radius!r} is not a number") from exc
    if not math.isfinite(r):
        raise BadCoordinates(f"{what}={r!r} must be finite")
    if r == SNEWS_NO_POSITION_RADIUS:
        raise BadCoordinates(
            f"{what}=360 deg is the 'no localisation' code (SNEWS); there is no region"
        )
    if r <= 0.0:
        raise BadCoordinates(f"{what}={r!r} deg must be > 0 (0 or -1 mean 'no error given')")
    if r >= 180.0:
        raise BadCoordinates(f"{what}={r!r} deg must be < 180")
    if r < MIN_RADIUS_DEG:
        raise BadCoordinates(
            f"{what}={r!r} deg is below {MIN_RADIUS_DEG} deg (0.36 mas): not an error radius")
    return r


def validate_containment(containment: float, *, what: str = "containment") -> float:
    """Check a probability content strictly between 0 and 1.

    Examples
    --------
    >>> validate_containment(0.9)
    0.9
    """
    try:
        c = float(containment)
    except (TypeError, ValueError) as exc:
        raise BadCoordinates(f"{what}={containment!r} is not a number") from exc
    if not (math.isfinite(c) and 0.0 < c < 1.0):
        raise BadCoordinates(f"{what}={c!r} must be strictly between 0 and 1")
    return c


def validate_query(
    ra: npt.ArrayLike, dec: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Check query positions (vectorised) and return broadcast float arrays.

    Raises
    ------
    ValueError
        If any coordinate is not finite or a declination is outside ``[-90, 90]``.

    Examples
    --------
    >>> ra, dec = validate_query([370.0, 1.0], 0.0)
    >>> ra.tolist(), dec.tolist()
    ([10.0, 1.0], [0.0, 0.0])
    """
    ra_a, dec_a = np.broadcast_arrays(np.asarray(ra, dtype=np.float64),
                                      np.asarray(dec, dtype=np.float64))
    bad = ~(np.isfinite(ra_a) & np.isfinite(dec_a))
    if np.any(bad):
        raise ValueError(f"{int(np.sum(bad))} query position(s) with NaN or infinite ra/dec")
    if np.any(np.abs(dec_a) > 90.0):
        raise ValueError("query declination outside [-90, 90] deg")
    return normalise_ra(ra_a), np.array(dec_a, dtype=np.float64)
