"""Nearest-neighbour cross-match of alerts against the loaded catalogues.

Positions become unit vectors in a ``scipy.spatial.cKDTree`` built once per
catalogue; each alert asks for its nearest neighbour with an upper bound equal to the
chord of the radius, and the separation is ``2 asin(chord / 2)``. This is what
``astropy.coordinates.match_coordinates_sky`` does internally (it also uses a KD-tree
on unit vectors), without the SkyCoord overhead and with the tree kept in the
catalogue object, so a batch costs only the queries: 10^5 alerts against 10^5 sources
take about 0.1 s on one core (see the tests). Every position is exact (no
pixelisation), poles and the RA wrap need no special case.

Output columns, per catalogue key ``k``: ``xm_k_name`` (designation; a positional
``KEY Jhhmmss.ss+ddmmss.s`` built from the catalogue position when the catalogue has
no name column, e.g. the GCVS extract), ``xm_k_type`` (the catalogue's class column,
null if it has none) and ``xm_k_sep_arcsec``; all null when nothing is within the
radius.

The catalogues are loaded by :mod:`fink_core.catalogues` (driver side, then
broadcast); nothing here does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from fink_core.catalogues import Catalogue, unit_vectors


def crossmatch(
    ra: np.ndarray | pd.Series,
    dec: np.ndarray | pd.Series,
    catalogue: Catalogue,
    radius_arcsec: float | None = None,
) -> pd.DataFrame:
    """Nearest catalogue source within a radius, for each position.

    Parameters
    ----------
    ra, dec : array-like
        Alert positions, degrees. NaN or out-of-range positions get no match.
    catalogue : Catalogue
        The loaded catalogue.
    radius_arcsec : float, optional
        Match radius; default the catalogue's.

    Returns
    -------
    pandas.DataFrame
        Columns ``xm_<key>_name``, ``xm_<key>_type``, ``xm_<key>_sep_arcsec``
        (None/NaN where there is no source within the radius), one row per position
        (RangeIndex).

    Examples
    --------
    >>> cat = Catalogue("demo", 2.0, np.array([10.0]), np.array([20.0]),
    ...                 np.array(["star A"], dtype=object), None)
    >>> out = crossmatch(np.array([10.0, 10.0]), np.array([20.0 + 1 / 3600, 21.0]), cat)
    >>> out["xm_demo_name"].tolist(), out["xm_demo_sep_arcsec"].round(3).tolist()
    (['star A', None], [1.0, nan])
    """
    radius = catalogue.radius_arcsec if radius_arcsec is None else float(radius_arcsec)
    ra_a = np.asarray(ra, dtype="float64")
    dec_a = np.asarray(dec, dtype="float64")
    n = len(ra_a)
    name_col, type_col, sep_col = catalogue.columns()
    names = np.full(n, None, dtype=object)
    types = np.full(n, None, dtype=object)
    seps = np.full(n, np.nan)
    valid = np.isfinite(ra_a) & np.isfinite(dec_a) & (np.abs(dec_a) <= 90.0)
    if valid.any() and len(catalogue):
        chord_max = 2.0 * math.sin(math.radians(radius / 3600.0) / 2.0)
        dist, idx = catalogue.tree.query(
            unit_vectors(ra_a[valid], dec_a[valid]), k=1, distance_upper_bound=chord_max
        )
        hit = np.isfinite(dist)
        rows = np.flatnonzero(valid)[hit]
        src = idx[hit]
        names[rows] = catalogue.names[src]
        if catalogue.types is not None:
            types[rows] = catalogue.types[src]
        seps[rows] = np.degrees(2.0 * np.arcsin(np.clip(dist[hit] / 2.0, 0.0, 1.0))) * 3600.0
    return pd.DataFrame({name_col: names, type_col: types, sep_col: seps})


def crossmatch_all(df: pd.DataFrame, catalogues: Iterable[Catalogue]) -> pd.DataFrame:
    """Cross-match a batch of alerts against several catalogues.

    Parameters
    ----------
    df : pandas.DataFrame
        Alerts (``ra``, ``dec``, ``bad_coordinates``).
    catalogues : iterable of Catalogue

    Returns
    -------
    pandas.DataFrame
        Three columns per catalogue (see :func:`crossmatch`), index of ``df``.
        Alerts flagged ``bad_coordinates`` get no match.
    """
    ra = df["ra"].to_numpy(dtype="float64").copy()
    dec = df["dec"].to_numpy(dtype="float64").copy()
    bad = df["bad_coordinates"].to_numpy(dtype=bool)
    ra[bad] = np.nan
    dec[bad] = np.nan
    parts = [crossmatch(ra, dec, cat) for cat in catalogues]
    out = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=range(len(df)))
    out.index = df.index
    return out


def crossmatch_columns(keys: Iterable[str]) -> list[str]:
    """Output column names for catalogue keys, in order."""
    return [
        col for key in keys for col in (f"xm_{key}_name", f"xm_{key}_type", f"xm_{key}_sep_arcsec")
    ]


__all__ = ["crossmatch", "crossmatch_all", "crossmatch_columns"]
