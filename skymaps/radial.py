"""Radial error laws of circular localisations: one law per circle, exact on the sphere.

A circle's probability depends only on the angular distance ``theta`` from its centre.
Every law here is written in the equal-area variable ``h = 1 - cos theta``
(``= theta**2 / 2`` for small angles; a cap of radius ``theta`` has area ``2 pi h``
sr), so that its cumulative distribution (the credible level of a point, since all
these densities decrease with ``theta``), its density and the cap holding a given
level (the searched area) are exact and normalised on the whole sphere:

* :class:`FisherLaw` - the Fisher (spherical Gaussian) law of :mod:`skymaps.fisher`;
* :class:`FisherMixture` - concentric Fisher laws with weights (the Fermi GBM
  core + tail systematic model, :mod:`skymaps.conventions`): level and density are
  the mixture's own, ``sum_i w_i level_i`` and ``sum_i w_i p_i``;
* :class:`KingProfile` - the King profile, the two-parameter heavy-tailed law used
  for instrument point-spread functions (King 1962, AJ 67, 471; the Fermi-LAT PSF
  form), here for IceCube tracks whose 50 % and 90 % radii are both published
  (:func:`king_from_radii` fits it to both). With ``a = gamma sigma**2`` and
  ``g = gamma - 1``::

      F(h) = 1 - (1 + h / a)**(-g),   level(h) = F(h) / F(2),
      p(h) = g / a * (1 + h / a)**(-gamma) / (2 pi F(2))   per steradian,

  which for small angles is ``(1 - 1/gamma) / (2 pi sigma**2) *
  (1 + theta**2 / (2 gamma sigma**2))**(-gamma)``; ``gamma -> inf`` is the Gaussian.

An alert's own position error (a circular 2-D Gaussian of width ``e`` per axis) is
folded into a law by :meth:`~FisherLaw.folded`: every Gaussian width ``s`` becomes
``hypot(s, e)`` (the convolution of two Gaussians, exact for the Fisher law and each
component of a mixture in the small-angle limit; for the King profile the width is
widened the same way, exact in its Gaussian core and negligible wherever ``e`` is
much smaller than ``sigma``, which is the case of every neutrino circle).

Laws are stored with their region as a small JSON object (:meth:`~FisherLaw.to_dict`,
:func:`law_from_dict`). All public functions take and return degrees.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq

import skymaps.fisher as fisher

__all__ = [
    "FisherLaw",
    "FisherMixture",
    "GAUSSIAN_R50_PER_R90",
    "KingProfile",
    "RadialLaw",
    "king_from_radii",
    "law_from_dict",
]

FloatArray = npt.NDArray[np.float64]

_DEG2_PER_SR = (180.0 / math.pi) ** 2

#: ``r50 / r90`` of a circular 2-D Gaussian, ``sqrt(ln 2 / ln 10)`` = 0.5487: the
#: lightest tail a King profile reaches (``gamma -> inf``).
GAUSSIAN_R50_PER_R90 = math.sqrt(math.log(2.0) / math.log(10.0))


def _h(theta_deg: npt.ArrayLike) -> FloatArray:
    """``1 - cos theta`` without cancellation."""
    half = np.sin(np.radians(np.asarray(theta_deg, dtype=np.float64)) / 2.0)
    return np.asarray(2.0 * half**2, dtype=np.float64)


def _theta_deg(h: float) -> float:
    return math.degrees(2.0 * math.asin(min(1.0, math.sqrt(max(h, 0.0) / 2.0))))


def _levels(level: npt.ArrayLike) -> FloatArray:
    return np.clip(np.asarray(level, dtype=np.float64), 0.0, 1.0)


class RadialLaw(Protocol):
    """What the credible-level model needs of a circle's radial law."""

    def level(self, theta_deg: npt.ArrayLike) -> FloatArray:
        """Credible level (probability within ``theta``) at each distance."""
        ...

    def density_deg2(self, theta_deg: npt.ArrayLike) -> FloatArray:
        """Probability per square degree at each distance."""
        ...

    def searched_area_deg2(self, level: npt.ArrayLike) -> FloatArray:
        """Area of the cap holding each level (NaN gives NaN)."""
        ...

    def radius_for_level(self, containment: float) -> float:
        """Radius (degrees) of the cap holding ``containment``."""
        ...

    def folded(self, error_deg: float) -> RadialLaw:
        """The law convolved with a position error of width ``error_deg`` per axis."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """The law as a JSON object (stored with the region)."""
        ...


@dataclass(frozen=True)
class FisherLaw:
    """The Fisher law of width ``sigma_deg`` (:mod:`skymaps.fisher`).

    Examples
    --------
    >>> law = FisherLaw(1.0)
    >>> round(float(law.level(2.146)), 4), round(law.radius_for_level(0.9), 3)
    (0.9, 2.146)
    """

    sigma_deg: float

    def level(self, theta_deg: npt.ArrayLike) -> FloatArray:
        return fisher.level(theta_deg, self.sigma_deg)

    def density_deg2(self, theta_deg: npt.ArrayLike) -> FloatArray:
        return fisher.density_deg2(theta_deg, self.sigma_deg)

    def searched_area_deg2(self, level: npt.ArrayLike) -> FloatArray:
        return fisher.searched_area_deg2(level, self.sigma_deg)

    def radius_for_level(self, containment: float) -> float:
        return fisher.radius_for_level(self.sigma_deg, containment)

    def folded(self, error_deg: float) -> FisherLaw:
        return FisherLaw(math.hypot(self.sigma_deg, error_deg))

    def to_dict(self) -> dict[str, Any]:
        return {"law": "fisher", "sigma_deg": self.sigma_deg}


@dataclass(frozen=True)
class FisherMixture:
    """Concentric Fisher laws of widths ``sigmas_deg`` and ``weights`` (sum 1).

    Examples
    --------
    A mixture of one width is that Fisher law:

    >>> mix = FisherMixture((1.0, 1.0), (0.5, 0.5))
    >>> round(float(mix.level(2.146)), 4), round(float(mix.searched_area_deg2(0.9)), 3)
    (0.9, 14.468)
    """

    sigmas_deg: tuple[float, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.sigmas_deg) != len(self.weights) or not self.weights:
            raise ValueError("a mixture needs as many weights as widths (at least one)")
        if not math.isclose(sum(self.weights), 1.0, abs_tol=1e-9):
            raise ValueError(f"mixture weights {self.weights} do not sum to 1")

    def _components(self) -> zip[tuple[float, float]]:
        return zip(self.sigmas_deg, self.weights, strict=True)

    def level(self, theta_deg: npt.ArrayLike) -> FloatArray:
        total = sum(w * fisher.level(theta_deg, s) for s, w in self._components())
        return np.asarray(np.clip(total, 0.0, 1.0), dtype=np.float64)

    def density_deg2(self, theta_deg: npt.ArrayLike) -> FloatArray:
        return np.asarray(sum(w * fisher.density_deg2(theta_deg, s)
                              for s, w in self._components()), dtype=np.float64)

    def _level_h(self, h: FloatArray) -> FloatArray:
        total = np.zeros_like(h)
        for s, w in self._components():
            kappa = 1.0 / math.radians(s) ** 2
            total += w * -np.expm1(-kappa * h) / -math.expm1(-2.0 * kappa)
        return total

    def searched_area_deg2(self, level: npt.ArrayLike) -> FloatArray:
        """Cap of each level: the level is monotone in ``h``, solved by bisection
        (60 halvings of ``[0, 2]``: ``h`` to 2e-18, exact in double precision)."""
        c = np.asarray(level, dtype=np.float64)
        target = _levels(c)
        lo = np.zeros_like(target)
        hi = np.full_like(target, 2.0)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            below = self._level_h(mid) < target
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        area = 2.0 * math.pi * hi * _DEG2_PER_SR
        return np.asarray(np.where(np.isnan(c), np.nan, area), dtype=np.float64)

    def radius_for_level(self, containment: float) -> float:
        return fisher.mixture_radius(self.sigmas_deg, self.weights, containment)

    def folded(self, error_deg: float) -> FisherMixture:
        return FisherMixture(tuple(math.hypot(s, error_deg) for s in self.sigmas_deg),
                             self.weights)

    def to_dict(self) -> dict[str, Any]:
        return {"law": "fisher_mixture", "sigmas_deg": list(self.sigmas_deg),
                "weights": list(self.weights)}


@dataclass(frozen=True)
class KingProfile:
    """The King profile of width ``sigma_deg`` and tail index ``gamma`` (> 1).

    Examples
    --------
    >>> king = king_from_radii(0.4968, 1.2755)  # a real IceCube Bronze notice
    >>> [round(float(king.level(r)), 4) for r in (0.4968, 1.2755)]
    [0.5, 0.9]
    """

    sigma_deg: float
    gamma: float

    def __post_init__(self) -> None:
        if not (self.gamma > 1.0 and self.sigma_deg > 0.0):
            raise ValueError(f"King profile needs gamma > 1 and sigma > 0, got {self!r}")

    @property
    def _a(self) -> float:
        return self.gamma * math.radians(self.sigma_deg) ** 2

    def _cdf(self, h: npt.ArrayLike) -> FloatArray:
        g = self.gamma - 1.0
        return np.asarray(-np.expm1(-g * np.log1p(np.asarray(h) / self._a)), dtype=np.float64)

    @property
    def _norm(self) -> float:
        return float(self._cdf(2.0))

    def level(self, theta_deg: npt.ArrayLike) -> FloatArray:
        return np.asarray(np.clip(self._cdf(_h(theta_deg)) / self._norm, 0.0, 1.0),
                          dtype=np.float64)

    def density_deg2(self, theta_deg: npt.ArrayLike) -> FloatArray:
        a = self._a
        per_sr = ((self.gamma - 1.0) / a * np.exp(-self.gamma * np.log1p(_h(theta_deg) / a))
                  / (2.0 * math.pi * self._norm))
        return np.asarray(per_sr / _DEG2_PER_SR, dtype=np.float64)

    def _h_for(self, level: npt.ArrayLike) -> FloatArray:
        c = _levels(level)
        with np.errstate(divide="ignore"):
            h = self._a * np.expm1(-np.log1p(-c * self._norm) / (self.gamma - 1.0))
        return np.asarray(np.minimum(h, 2.0), dtype=np.float64)

    def searched_area_deg2(self, level: npt.ArrayLike) -> FloatArray:
        c = np.asarray(level, dtype=np.float64)
        area = 2.0 * math.pi * self._h_for(c) * _DEG2_PER_SR
        return np.asarray(np.where(np.isnan(c), np.nan, area), dtype=np.float64)

    def radius_for_level(self, containment: float) -> float:
        return _theta_deg(float(self._h_for(containment)))

    def folded(self, error_deg: float) -> KingProfile:
        return KingProfile(math.hypot(self.sigma_deg, error_deg), self.gamma)

    def to_dict(self) -> dict[str, Any]:
        return {"law": "king", "sigma_deg": self.sigma_deg, "gamma": self.gamma}


def _king_residual(log_x: float, h50: float, h90: float) -> float:
    """50 % residual of the King profile with ``1/a = exp(log_x)`` whose ``g`` puts
    90 % within ``h90`` on the sphere."""
    x = math.exp(log_x)
    l90, l2, l50 = math.log1p(h90 * x), math.log1p(2.0 * x), math.log1p(h50 * x)

    def at90(log_g: float) -> float:
        g = math.exp(log_g)
        return -math.expm1(-g * l90) - 0.9 * -math.expm1(-g * l2)

    g = math.exp(brentq(at90, math.log(1e-6), math.log(1e9), xtol=1e-15, rtol=1e-15))
    return -math.expm1(-g * l50) - 0.5 * -math.expm1(-g * l2)


def king_from_radii(r50_deg: float, r90_deg: float) -> KingProfile | None:
    """The King profile whose 50 % and 90 % radii are the given ones (exact, on the
    sphere), or ``None`` when no King profile has them: a ratio ``r50 / r90`` at or
    above the Gaussian's :data:`GAUSSIAN_R50_PER_R90` (within 0.1 %), whose law is
    then the Fisher law (the ``gamma -> inf`` limit), or radii of tens of degrees
    that no normalised profile reaches on the sphere.

    Raises
    ------
    ValueError
        Radii that are not ``0 < r50 < r90 < 180`` degrees.

    Examples
    --------
    >>> king = king_from_radii(0.2348, 0.6521)  # a real IceCube Bronze notice
    >>> round(king.gamma, 3), round(king.sigma_deg, 4)
    (2.155, 0.1247)
    >>> king_from_radii(7.0757, 12.8963) is None  # a real cascade: Gaussian ratio
    True
    """
    if not (0.0 < r50_deg < r90_deg < 180.0):
        raise ValueError(f"radii must be 0 < r50 < r90 < 180 deg, got {r50_deg}, {r90_deg}")
    if r50_deg / r90_deg >= GAUSSIAN_R50_PER_R90 * (1.0 - 1e-3):
        return None
    h50, h90 = float(_h(r50_deg)), float(_h(r90_deg))
    # The residual goes from the Gaussian-limit sign (x -> 0: too light a tail) to the
    # opposite at large x (gamma -> 1); bracket x = 1/a over many decades.
    lo, hi = math.log(1e-6 / h90), math.log(1e9 / h50)
    try:
        log_x = brentq(_king_residual, lo, hi, args=(h50, h90), xtol=1e-14, rtol=1e-14)
    except ValueError:
        return None
    x = math.exp(log_x)
    l90, l2 = math.log1p(h90 * x), math.log1p(2.0 * x)
    g = math.exp(brentq(
        lambda lg: -math.expm1(-math.exp(lg) * l90) - 0.9 * -math.expm1(-math.exp(lg) * l2),
        math.log(1e-6), math.log(1e9), xtol=1e-15, rtol=1e-15))
    gamma = g + 1.0
    return KingProfile(math.degrees(math.sqrt(1.0 / (x * gamma))), gamma)


def law_from_dict(doc: Mapping[str, Any]) -> RadialLaw:
    """The law stored as ``doc`` (:meth:`FisherLaw.to_dict` and the others).

    Raises
    ------
    ValueError
        An unknown law or missing parameters.

    Examples
    --------
    >>> law_from_dict({"law": "king", "sigma_deg": 0.2, "gamma": 2.1})
    KingProfile(sigma_deg=0.2, gamma=2.1)
    """
    kind = doc.get("law")
    try:
        if kind == "fisher":
            return FisherLaw(float(doc["sigma_deg"]))
        if kind == "fisher_mixture":
            sigmas: Sequence[Any] = doc["sigmas_deg"]
            weights: Sequence[Any] = doc["weights"]
            return FisherMixture(tuple(float(s) for s in sigmas),
                                 tuple(float(w) for w in weights))
        if kind == "king":
            return KingProfile(float(doc["sigma_deg"]), float(doc["gamma"]))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"radial law {kind!r} without its parameters: {exc}") from exc
    raise ValueError(f"unknown radial law {kind!r}")
