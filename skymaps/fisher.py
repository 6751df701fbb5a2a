"""The error model of circular localisations: the Fisher distribution on the sphere.

A circular error region is modelled as a Fisher (von Mises-Fisher) distribution
centred on the published position, with concentration ``kappa = 1 / sigma**2``
(``sigma`` in radians). It is the spherical form of the circular 2-D Gaussian and
the model used by the Fermi GBM team (Connaughton et al. 2015, ApJS 216, 32, eq. 1-2)
and by gwcelery for external triggers. For a point at angular distance ``theta``:

* probability within ``theta`` (the credible level of the point, since the density
  decreases with ``theta``)::

      level(theta) = (1 - exp(-kappa * (1 - cos theta))) / (1 - exp(-2 kappa))

* probability density per steradian::

      p(theta) = kappa / (2 pi (1 - exp(-2 kappa))) * exp(-kappa * (1 - cos theta))

For ``sigma`` of a few degrees or less these are the flat-sky Gaussian formulae
``level = 1 - exp(-theta**2 / 2 sigma**2)`` and
``density = exp(-theta**2 / 2 sigma**2) / (2 pi sigma**2)`` to better than 0.1 %;
unlike them they stay exact (normalised, correct areas) for the tens of degrees of
Fermi GBM circles. So ``sigma_deg`` is the Gaussian width for small circles.

All public functions take and return degrees.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq

__all__ = [
    "density_deg2",
    "gaussian_k",
    "level",
    "mixture_radius",
    "radius_for_level",
    "searched_area_deg2",
    "sigma_for_radius",
]

_DEG2_PER_SR = (180.0 / math.pi) ** 2

# Above this concentration exp(-2 kappa) < 1e-17 and the normalisation is exactly 1.
_KAPPA_NO_TAIL = 20.0


def gaussian_k(containment: float) -> float:
    """Radius of a circular 2-D Gaussian at ``containment``, in units of sigma.

    ``k(c) = sqrt(-2 ln(1 - c))``: 1.515 at 68.27 %, 2.146 at 90 %.

    Examples
    --------
    >>> round(gaussian_k(0.9), 4)
    2.146
    """
    return math.sqrt(-2.0 * math.log1p(-containment))


def _kappa(sigma_deg: float) -> float:
    return 1.0 / math.radians(sigma_deg) ** 2


def _norm(kappa: float) -> float:
    """``1 - exp(-2 kappa)``, the probability of the whole sphere before normalising."""
    return -math.expm1(-2.0 * kappa)


def level(theta_deg: npt.ArrayLike, sigma_deg: float) -> npt.NDArray[np.float64]:
    """Credible level of points at angular distance ``theta_deg`` from the centre.

    Examples
    --------
    >>> float(np.round(level(2.146 * 1.0, 1.0), 4))
    0.9
    """
    kappa = _kappa(sigma_deg)
    half = np.sin(np.radians(np.asarray(theta_deg, dtype=np.float64)) / 2.0)
    out = -np.expm1(-2.0 * kappa * half**2) / _norm(kappa)
    return np.asarray(np.clip(out, 0.0, 1.0), dtype=np.float64)


def density_deg2(theta_deg: npt.ArrayLike, sigma_deg: float) -> npt.NDArray[np.float64]:
    """Probability per square degree at angular distance ``theta_deg``.

    Examples
    --------
    >>> peak = float(density_deg2(0.0, 1.0))  # 1 / (2 pi sigma^2) for a 1 deg sigma
    >>> round(peak * 2 * np.pi, 4)
    1.0
    """
    kappa = _kappa(sigma_deg)
    half = np.sin(np.radians(np.asarray(theta_deg, dtype=np.float64)) / 2.0)
    per_sr = kappa / (2.0 * math.pi * _norm(kappa)) * np.exp(-2.0 * kappa * half**2)
    return np.asarray(per_sr / _DEG2_PER_SR, dtype=np.float64)


def searched_area_deg2(level_: npt.ArrayLike, sigma_deg: float) -> npt.NDArray[np.float64]:
    """Area (deg²) of the smallest credible region at each credible level.

    The credible region at level ``c`` is the cap whose probability is ``c``: with
    ``h = 1 - cos theta`` its area is ``2 pi h`` sr, and ``level(theta) = c`` gives
    ``h = -ln(1 - c (1 - exp(-2 kappa))) / kappa``. So the searched area of a point is
    exactly the cap through it: ``searched_area_deg2(level(theta, s), s)`` is the
    area of the cap of radius ``theta``. NaN levels give NaN.

    Examples
    --------
    >>> theta = 1.0
    >>> cap = 2 * np.pi * (1 - np.cos(np.radians(theta))) * (180 / np.pi) ** 2
    >>> bool(np.isclose(searched_area_deg2(level(theta, 2.0), 2.0), cap, rtol=1e-9))
    True
    >>> round(float(searched_area_deg2(1.0, 1.0)), 1)  # level 1: the whole sky
    41253.0
    """
    kappa = _kappa(sigma_deg)
    c = np.clip(np.asarray(level_, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore"):  # level 1 of a concentrated law: log1p(-1)
        h = np.minimum(-np.log1p(-c * _norm(kappa)) / kappa, 2.0)
    return np.asarray(2.0 * math.pi * h * _DEG2_PER_SR, dtype=np.float64)


def radius_for_level(sigma_deg: float, containment: float) -> float:
    """Radius (degrees) of the circle holding ``containment`` of the probability.

    Examples
    --------
    >>> round(radius_for_level(1.0, 0.9), 3)  # sqrt(2 ln 10) for a small sigma
    2.146
    """
    kappa = _kappa(sigma_deg)
    # level = (1 - exp(-2 kappa s^2)) / norm  with  s = sin(theta / 2)
    s2 = -math.log1p(-containment * _norm(kappa)) / (2.0 * kappa)
    return math.degrees(2.0 * math.asin(min(1.0, math.sqrt(s2))))


def sigma_for_radius(radius_deg: float, containment: float) -> float:
    """Width ``sigma`` (degrees) for which ``radius_deg`` holds ``containment``.

    Raises
    ------
    ValueError
        If no Fisher distribution puts so little probability in so large a circle
        (``containment`` below the uniform distribution's ``(1 - cos r) / 2``).

    Examples
    --------
    >>> round(sigma_for_radius(2.146, 0.9), 3)
    1.0
    """
    h = 2.0 * math.sin(math.radians(radius_deg) / 2.0) ** 2  # 1 - cos r, without cancellation
    uniform = h / 2.0
    if containment <= uniform:
        raise ValueError(
            f"a {radius_deg} deg radius holds {uniform:.3f} of a uniform sky; "
            f"containment {containment} is not possible"
        )
    kappa0 = -math.log1p(-containment) / h  # exact when exp(-2 kappa) vanishes
    if kappa0 >= _KAPPA_NO_TAIL:
        return math.degrees(1.0 / math.sqrt(kappa0))

    def excess(log_kappa: float) -> float:
        kappa = math.exp(log_kappa)
        return -math.expm1(-kappa * h) / _norm(kappa) - containment

    # level grows with kappa; it tends to the uniform value as kappa -> 0 and
    # reaches containment / norm >= containment at kappa0. When norm rounds to 1 the
    # excess there is 0 up to rounding (possibly -1e-17): kappa0 is then the answer.
    if excess(math.log(kappa0)) <= 0.0:
        return math.degrees(1.0 / math.sqrt(kappa0))
    log_kappa = brentq(excess, math.log(1e-12), math.log(kappa0), xtol=1e-14, rtol=1e-14)
    return math.degrees(1.0 / math.sqrt(math.exp(log_kappa)))


def mixture_radius(
    sigmas_deg: Sequence[float], weights: Sequence[float], containment: float
) -> float:
    """Radius (degrees) holding ``containment`` of a mixture of concentric Fisher laws.

    Examples
    --------
    >>> round(mixture_radius([1.0, 1.0], [0.5, 0.5], 0.9), 3)
    2.146
    """
    def excess(theta: float) -> float:
        total = sum(w * float(level(theta, s))
                    for s, w in zip(sigmas_deg, weights, strict=True))
        return total - containment

    return float(brentq(excess, 0.0, 180.0, xtol=1e-12, rtol=1e-12))
