"""Distance figures of GW candidates: line of sight, host galaxy, galaxy weighting.

Computed only for alerts that matched a region version with a distance ansatz
(``Region.distance_layers``), by :func:`coincidence.version.associations`:

* the line-of-sight posterior at the alert (:mod:`coincidence.distance`): mean and
  standard deviation, median and the 5 %–95 % (90 %) interval, Mpc;
* the host: among the galaxies of the :class:`HostSearch` catalogue within
  ``max_radius_arcsec`` of the alert and within ``max_offset_kpc`` projected at their
  own distance, the one of highest 3D posterior density. For it: the 3D density
  ``dP/dV`` at its position and distance (Singer et al. 2016; ligo.skymap's
  ``crossmatch`` with ``cosmology=False``), the p-value of its distance
  (:func:`coincidence.distance.distance_p_value`), its offset;
* ``galaxy_prob``: the share of the region's galaxy-weighted probability held by the
  galaxies near the alert. Each galaxy ``g`` of the catalogue inside the map's tiles
  weighs ``w_g = rho(n_g) N(n_g) φ((d_g - mu) / s) / s`` with
  ``s = sqrt(sigma**2 + err_g**2)`` (the 3D density, its distance error folded in;
  galaxies uniform in volume, no luminosity weight); ``galaxy_prob`` is
  ``Σ_{g near} w_g / Σ_g w_g``: 0 when no catalogued galaxy is near the alert, None
  without a catalogue or galaxies in the region.

The absolute magnitude needs the alert's magnitude, which the records carry:
:func:`magnitude_figures` (called by the application floor's record building).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from coincidence import distance as dist
from coincidence.association import DISTANCE_RECORD_FIELDS
from coincidence.galaxies import GalaxyCatalogue
from mm_broker.core.models import Region
from skymaps.distance import distance_parameters_at, has_distance
from skymaps.lookup import density_at

__all__ = ["DISTANCE_FIELDS", "DistanceModel", "HostSearch", "MagnitudeRanges",
           "distance_figures", "magnitude_figures", "prepare_distance"]

_DEG2_PER_SR = (180.0 / math.pi) ** 2
_ARCSEC_RAD = math.pi / (180.0 * 3600.0)

#: The association fields this module fills (None where they do not apply).
DISTANCE_FIELDS = DISTANCE_RECORD_FIELDS


@dataclass(frozen=True, eq=False)
class HostSearch:
    """A galaxy catalogue and how hosts are looked for (``[coincidence]`` settings).

    Attributes
    ----------
    catalogue : GalaxyCatalogue
    max_radius_arcsec : float
        Largest angular offset of a host (``host_max_radius_arcsec``).
    max_offset_kpc : float
        Largest projected offset at the galaxy's distance (``host_max_offset_kpc``).
    """

    catalogue: GalaxyCatalogue
    max_radius_arcsec: float
    max_offset_kpc: float


@dataclass(frozen=True, eq=False)
class DistanceModel:
    """A region version's distance ansatz with its galaxies, prepared once.

    Attributes
    ----------
    region : Region
    hosts : HostSearch or None
    total_weight : float
        ``Σ_g w_g`` over the catalogue's galaxies inside the map's cells (0 if none).
    """

    region: Region
    hosts: HostSearch | None
    total_weight: float


def _weights(region: Region, cat: GalaxyCatalogue,
             index: npt.NDArray[np.intp]) -> npt.NDArray[np.float64]:
    if len(index) == 0:
        return np.zeros(0)
    ra, dec = cat.ra[index], cat.dec[index]
    mu, sigma, norm, ok = distance_parameters_at(region, ra, dec)
    rho = density_at(region, ra, dec) * _DEG2_PER_SR
    s = np.hypot(sigma, cat.distance_err_mpc[index])
    w = rho * norm * np.exp(-0.5 * ((cat.distance_mpc[index] - mu) / s) ** 2) / (
        math.sqrt(2.0 * math.pi) * s)
    return np.where(ok, w, 0.0)


def prepare_distance(region: Region, hosts: HostSearch | None) -> DistanceModel | None:
    """The distance model of a region, or None when it has no distance ansatz."""
    if not has_distance(region):
        return None
    total = 0.0
    if hosts is not None and region.distance_layers is not None:
        galaxy, _ = hosts.catalogue.in_ranges(region.distance_layers.ranges)
        total = float(np.sum(_weights(region, hosts.catalogue, galaxy)))
    return DistanceModel(region, hosts, total)


def distance_figures(model: DistanceModel, ra: npt.NDArray[np.float64],
                     dec: npt.NDArray[np.float64]) -> list[dict[str, Any]]:
    """The fields of :data:`DISTANCE_FIELDS` for each alert (see the module docstring)."""
    region = model.region
    mu, sigma, norm, ok = distance_parameters_at(region, ra, dec)
    mean, std, _ = dist.moments(mu, sigma)
    q = dist.conditional_ppf(np.array([0.5, 0.05, 0.95])[:, None], mu, sigma, norm)
    out: list[dict[str, Any]] = []
    for i in range(len(ra)):
        rec: dict[str, Any] = dict.fromkeys(DISTANCE_FIELDS)
        if ok[i]:
            rec.update(dist_mean_mpc=_f(mean[i]), dist_std_mpc=_f(std[i]),
                       dist_median_mpc=_f(q[0, i]), dist_lo_mpc=_f(q[1, i]),
                       dist_hi_mpc=_f(q[2, i]))
        if model.hosts is not None and model.total_weight > 0:
            rec.update(_host(model, model.hosts, float(ra[i]), float(dec[i])))
        out.append(rec)
    return out


def _host(model: DistanceModel, hosts: HostSearch, ra: float, dec: float) -> dict[str, Any]:
    cat = hosts.catalogue
    near = cat.near(ra, dec, hosts.max_radius_arcsec)
    if len(near):
        cos = (np.sin(np.radians(dec)) * np.sin(np.radians(cat.dec[near]))
               + np.cos(np.radians(dec)) * np.cos(np.radians(cat.dec[near]))
               * np.cos(np.radians(cat.ra[near] - ra)))
        theta = np.arccos(np.clip(cos, -1.0, 1.0))
        kpc = cat.distance_mpc[near] * 1e3 * theta
        keep = kpc <= hosts.max_offset_kpc
        near, theta, kpc = near[keep], theta[keep], kpc[keep]
    if len(near) == 0:
        return {"galaxy_prob": 0.0}
    w = _weights(model.region, cat, near)
    best = int(np.argmax(w))
    g = int(near[best])
    mu, sigma, norm, ok = distance_parameters_at(model.region, cat.ra[g], cat.dec[g])
    rho = float(density_at(model.region, cat.ra[g], cat.dec[g])) * _DEG2_PER_SR
    d, e = float(cat.distance_mpc[g]), float(cat.distance_err_mpc[g])
    return {
        "host_name": str(cat.names[g]), "host_catalogue": str(cat.sources[g]),
        "host_distance_mpc": d, "host_distance_err_mpc": e,
        "host_offset_arcsec": float(theta[best]) / _ARCSEC_RAD,
        "host_offset_kpc": float(kpc[best]),
        "prob_density_vol_mpc3": _f(dist.volume_density(rho, d, mu, sigma, norm))
        if bool(ok) else None,
        "host_distance_p_value": _f(dist.distance_p_value(d, e, mu, sigma, norm))
        if bool(ok) else None,
        "galaxy_prob": float(np.sum(w)) / model.total_weight,
    }


@dataclass(frozen=True)
class MagnitudeRanges:
    """Absolute-magnitude ranges (``[coincidence]`` ``kilonova_abs_mag``,
    ``afterglow_abs_mag``): (brightest, faintest)."""

    kilonova: tuple[float, ...]
    afterglow: tuple[float, ...]


def magnitude_figures(record: Mapping[str, Any], mag: float | None,
                      ranges: MagnitudeRanges) -> dict[str, Any]:
    """Implied absolute magnitude of a candidate, and which ranges it fits.

    With a host: ``M`` at the host's distance, its interval at ``d ± 1.645 err``;
    without: ``M`` at the line-of-sight median and over its 90 % interval.
    ``abs_mag_basis`` says which (``host`` | ``posterior``). All None without a
    magnitude or a distance.

    Examples
    --------
    >>> r = {"host_distance_mpc": 40.0, "host_distance_err_mpc": 4.0}
    >>> m = magnitude_figures(r, 17.5, MagnitudeRanges((-17.5, -11.5), (-30.0, -18.0)))
    >>> round(m["abs_mag"], 2), m["abs_mag_basis"], m["fits_kilonova"], m["fits_afterglow"]
    (-15.51, 'host', True, False)
    """
    out: dict[str, Any] = {"abs_mag": None, "abs_mag_bright": None, "abs_mag_faint": None,
                           "abs_mag_basis": None, "fits_kilonova": None,
                           "fits_afterglow": None}
    if mag is None or not math.isfinite(mag):
        return out
    if record.get("host_distance_mpc") is not None:
        d = float(record["host_distance_mpc"])
        e = float(record.get("host_distance_err_mpc") or 0.0)
        centre, near, far, basis = d, max(d - 1.645 * e, 1e-3), d + 1.645 * e, "host"
    elif record.get("dist_median_mpc") is not None:
        centre, near, far, basis = (float(record["dist_median_mpc"]),
                                    float(record["dist_lo_mpc"]),
                                    float(record["dist_hi_mpc"]), "posterior")
    else:
        return out
    m_abs, bright, faint = (float(dist.absolute_magnitude(mag, x)) for x in (centre, far, near))
    out.update(abs_mag=m_abs, abs_mag_bright=bright, abs_mag_faint=faint, abs_mag_basis=basis,
               fits_kilonova=dist.fits_range(bright, faint, ranges.kilonova),
               fits_afterglow=dist.fits_range(bright, faint, ranges.afterglow))
    return out


def _f(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
