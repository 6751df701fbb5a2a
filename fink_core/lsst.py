"""Rubin/LSST alerts: the schema versions we flatten, how to tell them, the flattener.

An LSST record has ``diaSource``; its version (major.minor) is Fink's
``lsst_schema_version`` field or the ``lsst.vX_Y`` namespace of the writer schema.
The 100 LSST files of ``alerts/lsst/avro`` are Fink's re-serialisation of LSSTCam
alerts (schema namespace lost, version in the ``lsst_schema_version`` field). Times
are TAI MJD (converted with :func:`fink_core.times.tai_mjd_to_utc_jd`), brightness a
flux in nJy (converted to AB magnitudes); forced photometry below
:data:`LSST_FORCED_UPPER_LIMIT_SNR` becomes an upper limit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from fink_core.rows import HistPoint, bad_coordinates, num, summarise, survey_fields_json
from fink_core.times import tai_mjd_to_utc_jd
from mm_broker.core.errors import UnknownSchema

#: LSST schema versions (major.minor) whose layout we flatten.
LSST_SCHEMA_VERSIONS: dict[str, str] = {
    "8.0": "diaSourceId/ssSource/MPCORB layout",
    "9.0": "LSSTCam commissioning alerts of 2025",
    "10.0": "MPCORB renamed mpc_orbits (not used)",
    "11.0": "latest in lsst/alert_packet",
}

#: LSST forced photometry below this signal-to-noise becomes an upper limit.
LSST_FORCED_UPPER_LIMIT_SNR = 5.0

_AB_ZP_NJY = 31.4  # AB magnitude of 1 nJy: -2.5 log10(1e-9 / 3631)
_MAG_ERR_FACTOR = 2.5 / math.log(10.0)
_LSST_NS = re.compile(r"lsst\.v(\d+)_(\d+)")


def recognise(record: Mapping[str, Any], writer: Mapping[str, Any]) -> str | None:
    """Schema version of an LSST record, or None when it is not of LSST's layout.

    Parameters
    ----------
    record : mapping
        A decoded alert (or a row of a Fink Parquet file).
    writer : mapping
        The Avro writer schema (``{}`` when unknown).

    Returns
    -------
    str or None
        One of :data:`LSST_SCHEMA_VERSIONS`; None if ``record`` is no LSST alert.

    Raises
    ------
    UnknownSchema
        An LSST layout with a version not in :data:`LSST_SCHEMA_VERSIONS`.

    Examples
    --------
    >>> recognise({"diaSource": {}}, {"namespace": "lsst.v9_0"})
    '9.0'
    >>> recognise({"candidate": {}}, {}) is None
    True
    """
    if "diaSource" not in record:
        return None
    text = record.get("lsst_schema_version") or writer.get("namespace") or writer.get("name") or ""
    match = _LSST_NS.search(str(text))
    version = f"{int(match.group(1))}.{int(match.group(2))}" if match else None
    if version not in LSST_SCHEMA_VERSIONS:
        raise UnknownSchema("lsst", version)
    return version


def flux_to_mag(flux: Any, flux_err: Any) -> tuple[float, float]:
    """AB magnitude and its error from a flux and its error in nJy (NaN unless flux > 0).

    Examples
    --------
    >>> flux_to_mag(1.0, 0.1)[0], flux_to_mag(-1.0, 0.1)[0]
    (31.4, nan)
    """
    f = num(flux)
    if not f > 0.0:
        return math.nan, math.nan
    return _AB_ZP_NJY - 2.5 * math.log10(f), _MAG_ERR_FACTOR * num(flux_err) / f


def _lsst_id(value: Any) -> str | None:
    return None if value is None or int(value) == 0 else str(int(value))


def flatten_record(rec: Mapping[str, Any], version: str) -> dict[str, Any]:
    """One LSST record as a row dict of the alert model.

    Parameters
    ----------
    rec : mapping
        Decoded LSST alert (``diaSource``, ``diaObject``, ``prvDiaSources``...).
    version : str
        Its schema version (:func:`recognise`).

    Returns
    -------
    dict
        Model column -> value (``obs_time`` excepted, see
        :func:`fink_core.rows.model_frame`), the ``lsst_*`` columns included.
    """
    src = rec["diaSource"]
    obj = rec.get("diaObject") or {}
    source_id = src.get("diaSourceId", rec.get("diaSourceId"))
    obs_jd = tai_mjd_to_utc_jd(float(src["midpointMjdTai"]))
    ra, dec = num(src.get("ra")), num(src.get("dec"))
    mag, mag_err = flux_to_mag(src.get("psfFlux"), src.get("psfFluxErr"))
    is_negative = bool(src.get("isNegative")) or num(src.get("psfFlux")) < 0.0
    points: list[HistPoint] = []
    for prv in rec.get("prvDiaSources") or ():
        if prv.get("diaSourceId") == source_id or prv.get("midpointMjdTai") is None:
            continue
        pmag, perr = flux_to_mag(prv.get("psfFlux"), prv.get("psfFluxErr"))
        neg = bool(prv.get("isNegative")) or num(prv.get("psfFlux")) < 0.0
        jd = tai_mjd_to_utc_jd(float(prv["midpointMjdTai"]))
        points.append((jd, pmag, perr, str(prv.get("band")), False, neg))
    for forced in rec.get("prvDiaForcedSources") or ():
        flux, err = num(forced.get("psfFlux")), num(forced.get("psfFluxErr"))
        if forced.get("midpointMjdTai") is None or not err > 0.0:
            continue
        if flux / err < LSST_FORCED_UPPER_LIMIT_SNR:
            limit = _AB_ZP_NJY - 2.5 * math.log10(LSST_FORCED_UPPER_LIMIT_SNR * err)
            jd = tai_mjd_to_utc_jd(float(forced["midpointMjdTai"]))
            points.append((jd, limit, math.nan, str(forced.get("band")), True, False))
    points.append((obs_jd, mag, mag_err, str(src.get("band")), False, is_negative))
    first_mjd = obj.get("firstDiaSourceMjdTai")
    row: dict[str, Any] = {
        "alert_id": str(source_id),
        "object_id": _lsst_id(src.get("diaObjectId")),
        "survey": "lsst",
        "schema_version": version,
        "obs_jd": obs_jd,
        "ra": ra,
        "dec": dec,
        "bad_coordinates": bad_coordinates(ra, dec),
        "mag": mag,
        "mag_err": mag_err,
        "band": src.get("band"),
        "is_negative": is_negative,
        "reliability": num(src.get("reliability")),
        "survey_fields": survey_fields_json(rec),
        "lsst_ss_object_id": _lsst_id(src.get("ssObjectId")),
        "lsst_snr": num(src.get("snr")),
        "lsst_extendedness": num(src.get("extendedness")),
        "lsst_flags_set": [k for k, v in src.items() if v is True],
        "lsst_n_dia_sources": obj.get("nDiaSources"),
        "lsst_first_dia_source_jd": (
            math.nan if first_mjd is None else tai_mjd_to_utc_jd(float(first_mjd))
        ),
    }
    row.update(summarise(points, obs_jd))
    return row


__all__ = ["LSST_FORCED_UPPER_LIMIT_SNR", "LSST_SCHEMA_VERSIONS", "flatten_record",
           "flux_to_mag", "recognise"]
