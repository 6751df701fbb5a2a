"""Galaxy catalogues for GW hosts: loading, and the galaxies of a region version.

A :class:`GalaxyCatalogue` holds positions, luminosity distances and their errors of
one or more catalogues (CLU, GLADE, a site's GLADE+ or NED-LVS), in the order given:
a galaxy within :data:`SAME_GALAXY_ARCSEC` of one already loaded from an earlier
catalogue is the same galaxy and is dropped. Files are read by
:func:`fink_core.catalogues._read_table`'s formats through
:func:`fink_core.catalogues.load_catalogue` (positions, names); the distance column
is found by name (:data:`DISTANCE_COLUMNS`), its error too
(:data:`DISTANCE_ERROR_COLUMNS`); without an error column the error is
``sqrt((fraction d)**2 + (v_pec / H0)**2)`` (``[coincidence]``
``galaxy_distance_error_fraction``, ``galaxy_peculiar_velocity_kms``; ``H0`` of
Planck 2018, 67.66 km/s/Mpc). Galaxies without a finite positive distance are dropped.

Loading is I/O: the application floor does it once and hands the catalogue to the
engine. Everything else here is pure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from astropy.table import Table
from scipy.spatial import cKDTree

from fink_core.catalogues import load_catalogue
from fink_core.crossmatch import unit_vectors
from mm_broker.core.errors import CatalogueFormatError
from skymaps.ranges import ang2pix29

__all__ = ["DISTANCE_COLUMNS", "DISTANCE_ERROR_COLUMNS", "GalaxyCatalogue", "load_galaxies"]

#: Column names of the luminosity distance (Mpc), lower case, in order of preference.
DISTANCE_COLUMNS = ("distmpc", "dist_mpc", "d_l", "dl", "lumdist", "distance", "dist")
#: Column names of its 1-sigma error (Mpc).
DISTANCE_ERROR_COLUMNS = ("distmpc_err", "e_distmpc", "distmpc_error", "dist_err",
                          "d_l_err", "e_dist", "lumdist_err")
#: Two entries of different catalogues closer than this are one galaxy.
SAME_GALAXY_ARCSEC = 3.0
#: Hubble constant for the peculiar-velocity floor of distance errors (Planck 2018).
H0_KM_S_MPC = 67.66
_ARCSEC = math.pi / (180.0 * 3600.0)


@dataclass(frozen=True, eq=False)
class GalaxyCatalogue:
    """Galaxies with distances, sorted by order-29 pixel (see the module docstring).

    Attributes
    ----------
    ra, dec : ndarray of float64
        Degrees.
    distance_mpc, distance_err_mpc : ndarray of float64
        Luminosity distance and its 1-sigma error.
    names, sources : ndarray of object (str)
        Designation, and the catalogue file each galaxy comes from.
    ipix : ndarray of int64
        Order-29 pixel, ascending.
    """

    ra: npt.NDArray[np.float64]
    dec: npt.NDArray[np.float64]
    distance_mpc: npt.NDArray[np.float64]
    distance_err_mpc: npt.NDArray[np.float64]
    names: npt.NDArray[np.object_]
    sources: npt.NDArray[np.object_]
    ipix: npt.NDArray[np.int64] = field(init=False, repr=False)
    tree: cKDTree = field(init=False, repr=False)

    def __post_init__(self) -> None:
        ipix = ang2pix29(self.ra, self.dec) if len(self.ra) else np.zeros(0, np.int64)
        order = np.argsort(ipix, kind="stable")
        for name in ("ra", "dec", "distance_mpc", "distance_err_mpc", "names", "sources"):
            object.__setattr__(self, name, np.asarray(getattr(self, name))[order])
        object.__setattr__(self, "ipix", np.asarray(ipix[order], dtype=np.int64))
        object.__setattr__(self, "tree", cKDTree(unit_vectors(self.ra, self.dec)
                                                 if len(self.ra) else np.zeros((0, 3))))

    def __len__(self) -> int:
        return len(self.ra)

    def in_ranges(self, ranges: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.intp],
                                                                 npt.NDArray[np.intp]]:
        """Galaxies inside sorted, disjoint order-29 ranges.

        Returns
        -------
        galaxy, cell : ndarray of intp
            Index of each galaxy found and of the range holding it.

        Examples
        --------
        >>> cat = GalaxyCatalogue(np.array([10.0, 200.0]), np.array([0.0, 0.0]),
        ...     np.array([40.0, 50.0]), np.array([4.0, 5.0]),
        ...     np.array(["a", "b"], dtype=object), np.array(["x", "x"], dtype=object))
        >>> galaxy, cell = cat.in_ranges(np.array([[4 * 4**29, 5 * 4**29]]))
        >>> cat.names[galaxy].tolist(), cell.tolist()
        (['a'], [0])
        """
        r = np.asarray(ranges, dtype=np.int64).reshape(-1, 2)
        start = np.searchsorted(self.ipix, r[:, 0], side="left")
        stop = np.searchsorted(self.ipix, r[:, 1], side="left")
        counts = stop - start
        cell = np.repeat(np.arange(len(r)), counts)
        offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        return (np.repeat(start, counts) + offsets).astype(np.intp), cell.astype(np.intp)

    def near(self, ra: float, dec: float, radius_arcsec: float) -> npt.NDArray[np.intp]:
        """Galaxies within ``radius_arcsec`` of a position (ascending index)."""
        if len(self) == 0:
            return np.zeros(0, dtype=np.intp)
        chord = 2.0 * math.sin(0.5 * radius_arcsec * _ARCSEC)
        found = self.tree.query_ball_point(unit_vectors(np.array([ra]), np.array([dec]))[0],
                                           chord)
        return np.array(sorted(found), dtype=np.intp)


def _column(frame: pd.DataFrame, candidates: Sequence[str]) -> str | None:
    lower = {str(c).lower(): str(c) for c in frame.columns}
    return next((lower[c] for c in candidates if c in lower), None)


def _read(path: Path) -> pd.DataFrame:
    if path.suffix.lower() in (".csv", ".tsv", ".txt"):
        return pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    return Table.read(path).to_pandas()


def load_galaxies(paths: Sequence[str | Path], *, error_fraction: float,
                  peculiar_velocity_kms: float) -> GalaxyCatalogue:
    """Load galaxy catalogues (see the module docstring).

    Parameters
    ----------
    paths : sequence of path
        Catalogue files, in order of preference.
    error_fraction, peculiar_velocity_kms : float
        The distance-error model where a file has no error column.

    Raises
    ------
    CatalogueFormatError
        A file without positions or without a distance column.
    """
    parts: list[pd.DataFrame] = []
    for raw in paths:
        path = Path(raw)
        cat = load_catalogue(path, key="galaxies", radius_arcsec=1.0)
        frame = _read(path)
        dist_col = _column(frame, DISTANCE_COLUMNS)
        if dist_col is None:
            raise CatalogueFormatError(f"{path}: no distance column (one of {DISTANCE_COLUMNS})")
        ra_col, dec_col = cat.provenance.get("ra_col"), cat.provenance.get("dec_col")
        ra = pd.to_numeric(frame[ra_col], errors="coerce").to_numpy(float)
        dec = pd.to_numeric(frame[dec_col], errors="coerce").to_numpy(float)
        dist = pd.to_numeric(frame[dist_col], errors="coerce").to_numpy(float)
        err_col = _column(frame, DISTANCE_ERROR_COLUMNS)
        floor = peculiar_velocity_kms / H0_KM_S_MPC
        err = (pd.to_numeric(frame[err_col], errors="coerce").to_numpy(float)
               if err_col is not None else np.hypot(error_fraction * dist, floor))
        names = _names(frame, path)
        ok = (np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90) & np.isfinite(dist)
              & (dist > 0) & np.isfinite(err) & (err >= 0))
        parts.append(pd.DataFrame({"ra": ra[ok] % 360.0, "dec": dec[ok], "d": dist[ok],
                                   "e": err[ok], "name": names[ok], "source": path.name}))
    kept: list[pd.DataFrame] = []
    for part in parts:
        if kept and len(part):
            earlier = pd.concat(kept, ignore_index=True)
            tree = cKDTree(unit_vectors(earlier.ra.to_numpy(), earlier.dec.to_numpy()))
            dist, _ = tree.query(unit_vectors(part.ra.to_numpy(), part.dec.to_numpy()))
            part = part[dist > 2.0 * math.sin(0.5 * SAME_GALAXY_ARCSEC * _ARCSEC)]
        kept.append(part)
    table = (pd.concat(kept, ignore_index=True) if kept else
             pd.DataFrame({"ra": [], "dec": [], "d": [], "e": [], "name": [], "source": []}))
    return GalaxyCatalogue(table.ra.to_numpy(float), table.dec.to_numpy(float),
                           table.d.to_numpy(float), table.e.to_numpy(float),
                           table.name.to_numpy(object), table.source.to_numpy(object))


_NAME_COLUMNS = ("name", "objname", "hyperleda", "gwgc", "2mass", "pgc")
_NO_NAME = {"", "---", "<NA>", "nan", "None"}


def _names(frame: pd.DataFrame, path: Path) -> npt.NDArray[np.object_]:
    """Per row, the first name given among :data:`_NAME_COLUMNS` (GLADE has several,
    often empty: ``---``, ``<NA>``), else ``<file stem>:<row>``."""
    columns = [c for c in (_column(frame, (n,)) for n in _NAME_COLUMNS) if c is not None]
    out = np.array([f"{path.stem}:{i}" for i in range(len(frame))], dtype=object)
    for column in reversed(columns):
        texts = frame[column].map(_text).to_numpy(object)
        given = np.array([t not in _NO_NAME for t in texts], dtype=bool)
        out = np.where(given, texts, out)
    return out


def _text(value: object) -> str:
    """Text of a name cell (bytes, or the ``b'...'`` text of bytes written to CSV)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip()
    text = str(value).strip()
    if len(text) >= 3 and text[:2] in ("b'", 'b"') and text[-1] == text[1]:
        text = text[2:-1]
    return text
