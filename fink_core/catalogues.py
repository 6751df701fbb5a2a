"""Local catalogues: what a loaded catalogue is, the default set, and loading them.

Loading
-------
:func:`load_catalogue` reads any table with sky positions: Parquet, CSV/TSV, FITS,
VOTable or (astropy) HDF5, one file or several concatenated (4LAC comes as a high-
and a low-latitude FITS file). ra/dec columns are found by name (``ra``/``dec``,
``RAJ2000``/``DEJ2000``, ``RAdeg``/``DEdeg``, ``R.A.``/``Dec``...) unless given;
sexagesimal text (3HSP's ``"00 01 16.37"``) is parsed, RA in hours. Each catalogue
records its provenance: the SHA-256 of every file, its row count and any version
keyword of the header (FITS ``EXTNAME``/``VERSION``/``DATE``, HDF5/Parquet metadata).
Loading is I/O: do it once on the driver and broadcast the :class:`Catalogue` (it
pickles); :func:`fink_core.crossmatch.crossmatch` itself does no I/O.

Matching is :mod:`fink_core.crossmatch`'s (a KD-tree per catalogue, built here at load).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from astropy.coordinates import Angle
from astropy.table import Table
from scipy.spatial import cKDTree

from mm_broker.core.errors import CatalogueFormatError
from mm_broker.core.provenance import catalogue_entry

_RA_NAMES = ("ra", "raj2000", "radeg", "ra_icrs", "ra_deg", "r.a.", "ra_j2000", "_raj2000")
_DEC_NAMES = (
    "dec",
    "decl",
    "declination",
    "dej2000",
    "dedeg",
    "de_icrs",
    "dec_deg",
    "dec_j2000",
    "_dej2000",
)
_NAME_NAMES = (
    "name",
    "source_name",
    "3hsp source name",
    "fullname",
    "objname",
    "designation",
    "id",
)
_TYPE_NAMES = ("vartype", "class", "type", "otype", "main_type")
_VERSION_KEYS = ("VERSION", "VERS", "DATA_REL", "RELEASE", "DATE", "EXTNAME")


@dataclass(frozen=True)
class CatalogueSpec:
    """How to load one catalogue of the default set.

    Attributes
    ----------
    key : str
        Short name; output columns are ``xm_<key>_*``.
    files : tuple of str
        File names, relative to the catalogue folder.
    radius_arcsec : float
        Match radius.
    ra_col, dec_col, name_col, type_col : str or None
        Columns to use (None: found by name).
    note : str
        Where the radius comes from.
    """

    key: str
    files: tuple[str, ...]
    radius_arcsec: float
    ra_col: str | None = None
    dec_col: str | None = None
    name_col: str | None = None
    type_col: str | None = None
    note: str = ""


#: The catalogues of ``shared/data/catalogues`` and how we match them.
DEFAULT_CATALOGUES: tuple[CatalogueSpec, ...] = (
    CatalogueSpec(
        "gcvs", ("gcvs.parquet",), 1.5, type_col="VarType",
        note="GCVS variable stars; 1.5\" as Fink (fink-science crossmatch_other_catalog)",
    ),
    CatalogueSpec(
        "spicy", ("spicy.parquet",), 1.2, type_col="class",
        note="SPICY young stellar objects; 1.2\" as Fink (fink-broker common/science.py)",
    ),
    CatalogueSpec(
        "4lac", ("table-4LAC-DR3-h.fits", "table-4LAC-DR3-l.fits"), 1.5,
        ra_col="RA_Counterpart", dec_col="DEC_Counterpart", name_col="Source_Name",
        type_col="CLASS",
        note="4LAC-DR3 AGN at their low-energy counterpart position, 1.5\" (Fink: LAT "
        "position RAJ2000/DEJ2000 within 60\")",
    ),
    CatalogueSpec(
        "3hsp", ("3hsp.csv",), 1.5, name_col="3HSP Source name",
        note="3HSP high-synchrotron-peaked blazars at their counterpart position, 1.5\" "
        "(Fink: 60\")",
    ),
    CatalogueSpec(
        "4fgl", ("gll_psc_v27.csv",), 180.0, name_col="name",
        note="Fermi-LAT 4FGL gamma-ray sources: context only, 3' ~ a typical 95% "
        "semi-major axis; never used to classify",
    ),
    CatalogueSpec(
        "tns", ("tns_raw.parquet",), 1.5, dec_col="declination", name_col="fullname",
        type_col="type", note="TNS objects; 1.5\" as Fink (xmatch_tns)",
    ),
    CatalogueSpec(
        "clu", ("CLU_mini.hdf5",), 30.0, name_col="name",
        note="CLU galaxies (host context); 30\"",
    ),
    CatalogueSpec(
        "glade", ("glade_S190814bv_subset.csv",), 30.0, name_col="HyperLEDA",
        note="GLADE galaxies (host context); 30\"",
    ),
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class Catalogue:
    """A loaded catalogue, ready to match (picklable, for a Spark broadcast).

    Attributes
    ----------
    key : str
        Short name (``xm_<key>_*`` columns).
    radius_arcsec : float
        Default match radius.
    ra, dec : numpy.ndarray
        Positions, degrees (rows without a valid position are dropped at load).
    names : numpy.ndarray
        Designations (object array of str).
    types : numpy.ndarray or None
        Class of each source, when the catalogue has one.
    provenance : dict
        ``files`` (name, sha256, bytes), ``n_rows``, ``n_dropped`` (rows without a
        valid position), ``header_version``, ``ra_col``, ``dec_col``.
    """

    key: str
    radius_arcsec: float
    ra: np.ndarray
    dec: np.ndarray
    names: np.ndarray
    types: np.ndarray | None
    provenance: dict[str, Any] = field(default_factory=dict)
    tree: cKDTree = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tree", cKDTree(unit_vectors(self.ra, self.dec)))

    def __len__(self) -> int:
        return len(self.ra)

    def columns(self) -> tuple[str, str, str]:
        """Names of the three output columns (name, type, separation)."""
        return (f"xm_{self.key}_name", f"xm_{self.key}_type", f"xm_{self.key}_sep_arcsec")


def unit_vectors(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Unit vectors (n, 3) of positions in degrees (the space of the KD-tree)."""
    ra_r = np.radians(ra)
    dec_r = np.radians(dec)
    cos_dec = np.cos(dec_r)
    return np.column_stack((cos_dec * np.cos(ra_r), cos_dec * np.sin(ra_r), np.sin(dec_r)))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _clean_text(value: Any) -> str | None:
    """Text of a cell: bytes decoded, quotes, ``b'..'`` wrappers and blanks removed."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (bytes, np.bytes_)):
        value = bytes(value).decode("utf-8", "replace")
    text = str(value).strip().strip('"').strip()
    if len(text) >= 3 and text.startswith(("b'", 'b"')) and text[-1] in "'\"":
        text = text[2:-1]
    return text if text and text not in ("--", "<NA>", "---", "nan", "None") else None


def _read_table(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read one catalogue file into pandas, with its header metadata."""
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix == ".gz" else path.suffix.lower()
    if suffix == ".parquet":
        table = pq.read_table(path)
        meta = {
            k.decode(): v.decode("utf-8", "replace")
            for k, v in (table.schema.metadata or {}).items()
        }
        return table.to_pandas(), meta
    if suffix in (".csv", ".tsv", ".txt"):
        frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", skipinitialspace=True)
        return frame, {}
    if suffix in (
        ".fits",
        ".fit",
        ".fits.gz",
        ".fit.gz",
        ".hdf5",
        ".h5",
        ".vot",
        ".votable",
        ".xml",
    ):
        table = Table.read(path)
        meta = {str(k): v for k, v in table.meta.items()}
        # units: keep numeric columns numeric (hour-angle RA is converted below)
        units = {name: str(col.unit) for name, col in table.columns.items() if col.unit is not None}
        frame = table.to_pandas()
        meta["_units"] = units
        return frame, meta
    raise CatalogueFormatError(f"{path}: unknown catalogue format {suffix!r}")


def _find(
    columns: Sequence[str], wanted: str | None, candidates: Sequence[str], what: str
) -> str | None:
    if wanted is not None:
        if wanted not in columns:
            raise CatalogueFormatError(
                f"no column {wanted!r} for {what} (have {list(columns)[:20]})"
            )
        return wanted
    lower = {c.lower(): c for c in columns}
    for cand in candidates:
        if cand in lower:
            return lower[cand]
    return None


def _angles(values: pd.Series, is_ra: bool, unit: str | None) -> np.ndarray:
    """Degrees from a numeric or sexagesimal column."""
    if pd.api.types.is_numeric_dtype(values):
        out = values.to_numpy(dtype="float64")
        if is_ra and unit in ("h", "hourangle", "hour"):
            out = out * 15.0
        return out
    texts = [_clean_text(v) for v in values]
    out = np.full(len(texts), np.nan)
    for i, text in enumerate(texts):
        if text is None:
            continue
        try:
            number = float(text)
        except ValueError:
            angle = Angle(text, unit="hourangle" if is_ra else "deg")
            out[i] = angle.degree
        else:
            out[i] = number
    return out


def _designation(key: str, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Positional names ``KEY Jhhmmss.ss+ddmmss.s`` from catalogue positions."""
    ra_cs = np.rint(np.mod(ra, 360.0) / 15.0 * 360000.0).astype(np.int64) % (24 * 360000)
    dec_ds = np.rint(np.abs(dec) * 36000.0).astype(np.int64)
    names = np.empty(len(ra), dtype=object)
    for i in range(len(ra)):
        c, d = int(ra_cs[i]), int(dec_ds[i])
        sign = "-" if dec[i] < 0 else "+"
        names[i] = (
            f"{key.upper()} J{c // 360000:02d}{c // 6000 % 60:02d}{c % 6000 // 100:02d}."
            f"{c % 100:02d}{sign}{d // 36000:02d}{d // 600 % 60:02d}{d % 600 // 10:02d}.{d % 10}"
        )
    return names


def load_catalogue(
    paths: str | Path | Iterable[str | Path],
    key: str,
    radius_arcsec: float,
    *,
    ra_col: str | None = None,
    dec_col: str | None = None,
    name_col: str | None = None,
    type_col: str | None = None,
) -> Catalogue:
    """Load a catalogue from one or more files.

    Parameters
    ----------
    paths : path or iterable of paths
        Parquet, CSV/TSV, FITS, VOTable or HDF5 files, concatenated in order.
    key : str
        Short name (lower case, no spaces): output columns ``xm_<key>_*``.
    radius_arcsec : float
        Match radius (arcsec).
    ra_col, dec_col, name_col, type_col : str, optional
        Column names; found by name when omitted (no name column: positional names;
        no type column: types are null).

    Returns
    -------
    Catalogue
        Positions in degrees, names, types, KD-tree and provenance.

    Raises
    ------
    CatalogueFormatError
        Unknown format, or no ra/dec columns.
    """
    files = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    frames = []
    provenance: dict[str, Any] = {"files": [], "header_version": {}}
    units: dict[str, str] = {}
    for path in files:
        frame, meta = _read_table(path)
        frame = frame.rename(columns={c: str(c).strip() for c in frame.columns})
        units.update(meta.pop("_units", {}))
        provenance["files"].append(
            {"name": path.name, "sha256": _sha256(path), "bytes": path.stat().st_size}
        )
        versions = {k: str(meta[k]) for k in _VERSION_KEYS if k in meta}
        if versions:
            provenance["header_version"][path.name] = versions
        frames.append(frame)
    if len(frames) > 1 and all(isinstance(f, pd.DataFrame) for f in frames):
        data = pd.concat(frames, ignore_index=True)
    else:
        data = frames[0]
    columns = list(data.columns)
    ra_name = _find(columns, ra_col, _RA_NAMES, "ra")
    dec_name = _find(columns, dec_col, _DEC_NAMES, "dec")
    if ra_name is None or dec_name is None:
        raise CatalogueFormatError(f"{files[0]}: no ra/dec columns in {columns[:20]}")
    name_name = _find(columns, name_col, _NAME_NAMES, "name")
    type_name = _find(columns, type_col, _TYPE_NAMES, "type")
    ra = _angles(data[ra_name], True, units.get(ra_name))
    dec = _angles(data[dec_name], False, units.get(dec_name))
    good = np.isfinite(ra) & np.isfinite(dec) & (dec >= -90) & (dec <= 90)
    ra, dec = ra[good] % 360.0, dec[good]
    if name_name is not None:
        names = np.array([_clean_text(v) for v in data[name_name].to_numpy()[good]], dtype=object)
        missing = np.array([n is None for n in names], dtype=bool)
        if missing.any():
            names[missing] = _designation(key, ra[missing], dec[missing])
    else:
        names = _designation(key, ra, dec)
    types = None
    if type_name is not None:
        types = np.array([_clean_text(v) for v in data[type_name].to_numpy()[good]], dtype=object)
    provenance.update(
        n_rows=int(good.sum()),
        n_dropped=int((~good).sum()),
        ra_col=ra_name,
        dec_col=dec_name,
        name_col=name_name,
        type_col=type_name,
    )
    return Catalogue(key, float(radius_arcsec), ra, dec, names, types, provenance)


def load_default_catalogues(
    folder: str | Path, keys: Iterable[str] | None = None
) -> list[Catalogue]:
    """Load the catalogues of :data:`DEFAULT_CATALOGUES` from a folder.

    Parameters
    ----------
    folder : str or Path
        The catalogue folder (``shared/data/catalogues``).
    keys : iterable of str, optional
        Subset of keys to load (default: all).

    Returns
    -------
    list of Catalogue
    """
    base = Path(folder)
    wanted = None if keys is None else set(keys)
    out = []
    for spec in DEFAULT_CATALOGUES:
        if wanted is not None and spec.key not in wanted:
            continue
        cat = load_catalogue(
            [base / f for f in spec.files],
            spec.key,
            spec.radius_arcsec,
            ra_col=spec.ra_col,
            dec_col=spec.dec_col,
            name_col=spec.name_col,
            type_col=spec.type_col,
        )
        cat.provenance["note"] = spec.note
        out.append(cat)
    return out


def provenance(catalogues: Iterable[Catalogue]) -> dict[str, dict[str, Any]]:
    """Provenance of the catalogues, keyed by catalogue key (for a run summary): per
    catalogue, :func:`mm_broker.core.provenance.catalogue_entry`."""
    return {c.key: catalogue_entry(c) for c in catalogues}


def catalogue_keys(catalogues: Iterable[Catalogue] | Mapping[str, Catalogue]) -> list[str]:
    """Keys of catalogues, in order."""
    values = catalogues.values() if isinstance(catalogues, Mapping) else catalogues
    return [c.key for c in values]


__all__ = [
    "DEFAULT_CATALOGUES",
    "Catalogue",
    "CatalogueSpec",
    "catalogue_keys",
    "load_catalogue",
    "load_default_catalogues",
    "provenance",
    "unit_vectors",
]
