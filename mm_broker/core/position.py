"""The one check of a notice position, shared by every parser.

The rule
--------
* ``ra`` and ``dec`` must be finite numbers (degrees, ICRS);
* ``dec`` must lie in ``[-90, 90]``;
* ``ra`` must lie in ``[0, 360]``; ``360`` (and ``-0.0``) is returned as ``0``, so
  everything past this check may assume ``0 <= ra < 360``.

Anything else raises :class:`~mm_broker.core.errors.BadCoordinates` (the notice is
rejected, with this reason, and kept in the journal).

Why ``[0, 360]`` and not a wider range that is wrapped: every format we read
writes the right ascension as an ICRS angle in ``[0, 360)`` — VOEvent 2.0
``Position2D`` in ``UTC-ICRS-GEO`` (GCN classic, SVOM, KM3NeT, LVK), the GCN unified
JSON notices (``core/Localization``) and the IceCube JSON notices; no mission of ours
uses ``[-180, 180)``. A value outside ``[0, 360]`` is therefore not the same angle
written differently but a corrupt packet or a missing-value code (``-999``, ``999``,
``-1``): wrapping it would invent a position and match alerts against it. ``360``
itself is accepted because a value just below it is rounded up when printed with
few decimals (``359.999`` with two is ``360.00``); it is the direction of ``0``.
Before this module, the JSON and VOEvent parsers applied this rule in two helpers
of their own; :mod:`skymaps.coords` still checks localisations built by other means
(``[-360, 360]``, wrapped), after the parsers.

Examples
--------
>>> check_position(120.0, -5.5)
(120.0, -5.5)
>>> check_position(360.0, 90.0)
(0.0, 90.0)
>>> try:
...     check_position(-999.0, 10.0, "Fermi-GBM:1 FERMI_GBM_GND_POS")
... except BadCoordinates as exc:
...     print(exc)
bad_coordinates: Fermi-GBM:1 FERMI_GBM_GND_POS: ra = -999 deg is outside [0, 360]
"""

from __future__ import annotations

import math

from mm_broker.core.errors import BadCoordinates

__all__ = ["DEC_RANGE", "RA_RANGE", "check_position"]

#: Accepted right ascensions (degrees), both ends included; 360 is returned as 0.
RA_RANGE = (0.0, 360.0)
#: Accepted declinations (degrees), both ends included.
DEC_RANGE = (-90.0, 90.0)


def check_position(ra: float, dec: float, what: str = "") -> tuple[float, float]:
    """Check a notice position and return it with ``0 <= ra < 360``.

    Parameters
    ----------
    ra, dec : float
        Right ascension and declination in degrees (ICRS), as the notice gives them.
    what : str, optional
        Names the notice or the field in the error message (e.g. the event id and
        notice type, or ``"rectangular_error_corners[2]"``).

    Returns
    -------
    tuple of float
        ``(ra, dec)``, ``ra`` folded into ``[0, 360)``.

    Raises
    ------
    BadCoordinates
        A non-finite value, ``dec`` outside ``[-90, 90]`` or ``ra`` outside
        ``[0, 360]``.
    """
    where = f"{what}: " if what else ""
    ra_f, dec_f = float(ra), float(dec)
    if not (math.isfinite(ra_f) and math.isfinite(dec_f)):
        raise BadCoordinates(f"{where}non-finite position ra={ra_f!r}, dec={dec_f!r}")
    if not DEC_RANGE[0] <= dec_f <= DEC_RANGE[1]:
        raise BadCoordinates(f"{where}dec = {dec_f:g} deg is outside [-90, 90]")
    if not RA_RANGE[0] <= ra_f <= RA_RANGE[1]:
        raise BadCoordinates(f"{where}ra = {ra_f:g} deg is outside [0, 360]")
    # 360 -> 0; -0.0 -> 0.0 (x % 360 of -0.0 is 0.0, and of any value in [0, 360) itself).
    return (ra_f % 360.0 + 0.0, dec_f)
