"""The sky of ``mm-broker bench soak``: disjoint circles and alert positions inside
or well away from them, and the exact count of counterparts from order-29 ranges.
Pure numpy.
"""

from __future__ import annotations

import numpy as np


def unit(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Unit vectors of positions.

    Parameters
    ----------
    ra, dec : ndarray
        Positions, degrees.

    Returns
    -------
    ndarray, shape (..., 3)
        Cartesian unit vectors.
    """
    r, d = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=-1)


def near_any(ra: np.ndarray, dec: np.ndarray, centres: np.ndarray,
              radius_deg: np.ndarray) -> np.ndarray:
    """Which points lie within ``radius_deg[j]`` of some centre ``j``.

    Parameters
    ----------
    ra, dec : ndarray
        Points, degrees.
    centres : ndarray, shape (m, 3)
        Unit vectors of the centres (:func:`unit`).
    radius_deg : ndarray, shape (m,)
        Radius of each centre, degrees.

    Returns
    -------
    ndarray of bool
        One per point.
    """
    limit = np.cos(np.radians(radius_deg))
    out = np.zeros(len(ra), dtype=bool)
    for start in range(0, len(ra), 50_000):
        cos = unit(ra[start:start + 50_000], dec[start:start + 50_000]) @ centres.T
        out[start:start + 50_000] = np.any(cos > limit, axis=1)
    return out


def soak_sky(n_regions: int, n_alerts: int, fraction: float, seed: int,
             ) -> dict[str, np.ndarray]:
    """Circles and alert positions of the soak.

    ``n_regions`` circles (90 % radius 0.5–2°) on a Fibonacci lattice (randomly turned),
    disjoint by construction. Each alert is, with probability ``fraction``, placed
    uniformly within 0.9 radius of a random circle (``region`` = its index), otherwise
    uniformly on the sky but farther than 1.1 radius from every circle
    (``region`` = −1): no alert lies near a boundary, so whether it is a counterpart
    does not depend on how the circle is pixelised.

    Parameters
    ----------
    n_regions : int
        Circles.
    n_alerts : int
        Alert positions.
    fraction : float
        Probability that an alert is placed inside a circle.
    seed : int
        Seed of the random generator.

    Returns
    -------
    dict of ndarray
        ``centre_ra``, ``centre_dec``, ``radius`` (per circle, degrees); ``ra``,
        ``dec``, ``region`` (per alert).

    Raises
    ------
    ValueError
        If that many circles do not fit on the sky disjoint.
    """
    rng = np.random.default_rng(seed)
    k = np.arange(n_regions)
    cdec = np.degrees(np.arcsin(1 - (2 * k + 1) / n_regions))
    cra = (np.degrees(k * np.pi * (3 - np.sqrt(5))) + rng.uniform(0, 360)) % 360
    radius = rng.uniform(0.5, 2.0, n_regions)
    centres = unit(cra, cdec)
    if n_regions > 1:
        cos = np.clip(centres @ centres.T, -1, 1)
        np.fill_diagonal(cos, -1)
        if np.any(np.degrees(np.arccos(cos)) < 1.2 * (radius[:, None] + radius[None, :])):
            raise ValueError(f"{n_regions} regions do not fit on the sky as disjoint circles")
    inside = rng.random(n_alerts) < fraction
    region = np.full(n_alerts, -1, dtype=np.int64)
    ra, dec = np.empty(n_alerts), np.empty(n_alerts)
    idx = np.flatnonzero(inside)
    j = rng.integers(0, n_regions, len(idx))
    region[idx] = j
    dist = np.radians(0.9 * radius[j] * np.sqrt(rng.random(len(idx))))
    angle = rng.uniform(0, 2 * np.pi, len(idx))
    dec1, ra1 = np.radians(cdec[j]), np.radians(cra[j])
    dec2 = np.arcsin(np.sin(dec1) * np.cos(dist) + np.cos(dec1) * np.sin(dist) * np.cos(angle))
    ra2 = ra1 + np.arctan2(np.sin(angle) * np.sin(dist) * np.cos(dec1),
                           np.cos(dist) - np.sin(dec1) * np.sin(dec2))
    ra[idx], dec[idx] = np.degrees(ra2) % 360, np.degrees(dec2)
    todo = np.flatnonzero(~inside)
    while len(todo):
        ra[todo] = rng.uniform(0, 360, len(todo))
        dec[todo] = np.degrees(np.arcsin(rng.uniform(-1, 1, len(todo))))
        todo = todo[near_any(ra[todo], dec[todo], centres, 1.1 * radius)]
    return {"centre_ra": cra, "centre_dec": cdec, "radius": radius, "ra": ra, "dec": dec,
            "region": region}


def in_ranges(ipix: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Which pixels fall in sorted, disjoint ``[lo, hi)`` ranges.

    Parameters
    ----------
    ipix : ndarray
        Order-29 nested indices.
    ranges : ndarray, shape (n, 2)
        Sorted, disjoint half-open ranges (a region's ``ranges``).

    Returns
    -------
    ndarray of bool
        One per pixel.
    """
    # one signed dtype on both sides: numpy compares int64 with uint64 through float64,
    # which cannot tell order-29 indices ~3e18 apart that differ by less than 512
    ipix = np.asarray(ipix, dtype=np.int64)
    ranges = np.asarray(ranges, dtype=np.int64)
    lo, hi = ranges[:, 0], ranges[:, 1]
    k = np.searchsorted(lo, ipix, side="right") - 1
    return (k >= 0) & (ipix < hi[np.clip(k, 0, None)])
