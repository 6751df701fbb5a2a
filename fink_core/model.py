"""The one flattened alert model of mm_broker.

Every alert, ZTF or Rubin/LSST, becomes one row with the columns below, in this
order and with these Arrow types. :func:`fink_core.decode.flatten` produces it; the
stages of ``fink_core`` (quality, context, features, cross-matches, classification)
only *add* columns to it, never alter these. The same schema is used by pandas (inside
``mapInPandas``), by Arrow and by Parquet; every type maps onto a Spark SQL type.

Conventions
-----------
- Missing values are nulls (NaN in float columns, None elsewhere), never ``-1`` or
  ``-999``. ZTF's ``-999`` "none" values and LSST's ``0`` "no id" values are turned
  into nulls in our columns; ``survey_fields`` keeps them exactly as sent.
- Times: ``obs_time`` is a UTC timestamp (microseconds); every ``*_jd`` column is a
  UTC Julian date. ZTF ``jd`` is the start of the exposure (kept as the survey gives
  it); LSST ``midpointMjdTai`` is the mid-exposure in TAI and is converted to UTC.
- Angles are ICRS degrees. Magnitudes are AB; LSST fluxes (nJy) are converted with
  ``mag = 31.4 - 2.5 log10(flux)`` (no magnitude for a negative difference flux).
- The light curve (``hist_*``) holds the previous detections, the previous upper
  limits *and the current detection*, in time order; the lists of one row have the
  same length. An upper limit's ``hist_mag`` is the limiting magnitude (5 sigma).

Why ``survey_fields`` is a JSON string
--------------------------------------
The survey-specific content (the ZTF ``candidate`` record, the LSST ``diaSource``,
``diaObject``, ``ssSource``... and, for Fink Parquet input, Fink's own added columns)
is kept as one JSON object per row, not as a struct column:

- a struct needs one fixed type for every row of a batch, but ZTF 1.8, 3.x and 4.02
  and LSST 8.0 to 11.0 all have different fields: one struct would need the union of
  all versions and would change (and break the Parquet archive and the declared
  ``mapInPandas`` output schema) with every new schema version;
- a string is stable in Arrow, Parquet and Spark, compresses well in Parquet, and is
  still queryable (``get_json_object``/``from_json`` in Spark, ``json.loads`` here);
- the fields the science code needs are *promoted* to typed columns (``ztf_*``,
  ``lsst_*`` below), so nothing in the hot path parses JSON.

The JSON object is the decoded alert record minus its history lists and cutouts
(those are in ``hist_*``; cutouts are not carried). NaN/inf become ``null``, bytes
become base64 text, timestamps ISO 8601 text.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

#: Surveys we flatten.
SURVEYS = ("ztf", "lsst")

#: Every band name that can appear in ``band`` / ``hist_band``.
BANDS = ("u", "g", "r", "i", "z", "y")


@dataclass(frozen=True)
class Column:
    """One column of the model.

    Attributes
    ----------
    name : str
        Column name (stable: other packages and the archive depend on it).
    type : pyarrow.DataType
        Arrow type (all nullable unless ``nullable`` is False).
    doc : str
        Meaning, unit and source field for each survey.
    nullable : bool
        Whether the column may hold nulls.
    """

    name: str
    type: pa.DataType
    doc: str
    nullable: bool = True


_TS = pa.timestamp("us", tz="UTC")

#: Survey-independent columns.
CORE_COLUMNS: tuple[Column, ...] = (
    Column("alert_id", pa.string(), "Survey-unique alert id: ZTF candid, LSST diaSourceId.", False),
    Column(
        "object_id",
        pa.string(),
        "ZTF objectId; LSST diaObjectId as text (null for an LSST source associated "
        "with a solar-system object only, diaObjectId 0).",
    ),
    Column("survey", pa.string(), '"ztf" or "lsst".', False),
    Column(
        "schema_version",
        pa.string(),
        'Alert schema version: ZTF schemavsn ("3.2", "4.02"; "1.8" for pre-v3 packets, '
        'read from the Avro schema), LSST "major.minor" ("9.0").',
        False,
    ),
    Column(
        "obs_time", _TS, "Observation time, UTC (ZTF exposure start, LSST mid-exposure).", False
    ),
    Column("obs_jd", pa.float64(), "Observation time as a UTC Julian date.", False),
    Column("ra", pa.float64(), "Right ascension of the detection, ICRS deg (as sent)."),
    Column("dec", pa.float64(), "Declination of the detection, ICRS deg (as sent)."),
    Column(
        "bad_coordinates",
        pa.bool_(),
        "True when ra/dec is null, NaN or out of range (ra not in [0, 360], dec not in "
        "[-90, 90]). The row is kept.",
        False,
    ),
    Column("mag", pa.float64(), "AB magnitude: ZTF magpsf; LSST from psfFlux (null if flux <= 0)."),
    Column("mag_err", pa.float64(), "1-sigma magnitude error: ZTF sigmapsf; LSST from psfFluxErr."),
    Column("band", pa.string(), "Band: ZTF fid 1/2/3 -> g/r/i; LSST band (u g r i z y)."),
    Column(
        "is_negative",
        pa.bool_(),
        "Negative difference (source fainter than the template): ZTF isdiffpos f/0; "
        "LSST isNegative or psfFlux < 0.",
        False,
    ),
    Column(
        "reliability",
        pa.float64(),
        "Real/bogus probability in [0, 1]: ZTF rb (random forest, every schema version; "
        "the score Fink cuts on, drb is in ztf_drb); LSST reliability.",
    ),
    Column(
        "first_detection_jd",
        pa.float64(),
        "UTC JD of the first detection in the alert's history, the current one included.",
        False,
    ),
    Column(
        "n_detections",
        pa.int32(),
        "Number of detections in the history, the current one included (both signs).",
        False,
    ),
    Column(
        "last_nondetection_jd",
        pa.float64(),
        "UTC JD of the most recent upper limit before the alert (null if none).",
    ),
    Column("hist_jd", pa.list_(pa.float64()), "Light curve: UTC JD, time-ordered.", False),
    Column(
        "hist_mag",
        pa.list_(pa.float64()),
        "Light curve: magnitude (detection) or limiting magnitude (upper limit).",
        False,
    ),
    Column(
        "hist_magerr",
        pa.list_(pa.float64()),
        "Light curve: magnitude error (NaN for limits).",
        False,
    ),
    Column("hist_band", pa.list_(pa.string()), "Light curve: band.", False),
    Column(
        "hist_is_upper_limit", pa.list_(pa.bool_()), "Light curve: True for an upper limit.", False
    ),
    Column(
        "hist_is_negative",
        pa.list_(pa.bool_()),
        "Light curve: True for a negative difference.",
        False,
    ),
    Column(
        "survey_fields",
        pa.string(),
        "JSON object: the alert record as sent, without history lists and cutouts.",
        False,
    ),
)

#: ZTF candidate fields promoted to typed columns: column -> (candidate field, type).
ZTF_PROMOTED: dict[str, tuple[str, pa.DataType]] = {
    "ztf_fid": ("fid", pa.int32()),
    "ztf_nbad": ("nbad", pa.int32()),
    "ztf_rb": ("rb", pa.float64()),
    "ztf_drb": ("drb", pa.float64()),
    "ztf_magdiff": ("magdiff", pa.float64()),
    "ztf_magnr": ("magnr", pa.float64()),
    "ztf_distnr": ("distnr", pa.float64()),
    "ztf_ssdistnr": ("ssdistnr", pa.float64()),
    "ztf_ssmagnr": ("ssmagnr", pa.float64()),
    "ztf_ssnamenr": ("ssnamenr", pa.string()),
    "ztf_sgscore1": ("sgscore1", pa.float64()),
    "ztf_distpsnr1": ("distpsnr1", pa.float64()),
    "ztf_neargaia": ("neargaia", pa.float64()),
    "ztf_maggaia": ("maggaia", pa.float64()),
    "ztf_classtar": ("classtar", pa.float64()),
    "ztf_ndethist": ("ndethist", pa.int32()),
    "ztf_jdstarthist": ("jdstarthist", pa.float64()),
}

#: LSST fields promoted to typed columns (filled by decode; see their docs).
LSST_PROMOTED: dict[str, tuple[str, pa.DataType]] = {
    "lsst_ss_object_id": ("diaSource.ssObjectId (0 -> null)", pa.string()),
    "lsst_snr": ("diaSource.snr", pa.float64()),
    "lsst_extendedness": ("diaSource.extendedness", pa.float64()),
    "lsst_flags_set": (
        "names of the boolean fields of diaSource that are True (flags, pixelFlags_*, "
        "isDipole, glint_trail, ...)",
        pa.list_(pa.string()),
    ),
    "lsst_n_dia_sources": ("diaObject.nDiaSources", pa.int32()),
    "lsst_first_dia_source_jd": ("diaObject.firstDiaSourceMjdTai as UTC JD", pa.float64()),
}

PROMOTED_COLUMNS: tuple[Column, ...] = tuple(
    Column(name, typ, f"ZTF candidate.{field} (null on LSST rows; -999 -> null).")
    for name, (field, typ) in ZTF_PROMOTED.items()
) + tuple(
    Column(name, typ, f"LSST {field} (null on ZTF rows).")
    for name, (field, typ) in LSST_PROMOTED.items()
)

#: Columns added by Fink's own science modules (:mod:`fink_core.fink_science`, ZTF rows;
#: null on LSST rows), in the enriched rows after our annotation columns: Fink's names
#: prefixed with ``fink_``, so Fink's own columns of an input are never overwritten.
FINK_SCIENCE_COLUMNS: tuple[Column, ...] = (
    Column("fink_roid", pa.int32(), "fink-science asteroids roid_catcher: 3 known SSO "
           "(MPC within 5\"), 2 Fink SSO candidate, 1 first detection, 0 not an SSO."),
    Column("fink_nalerthist", pa.int32(), "fink-science nalerthist: detections in the alert "
           "(current + history), upper limits not counted."),
    Column("fink_jd_first_real_det", pa.float64(), "fast_transient_rate: UTC JD of the first "
           "detection in the alert's history (7.4.0 rule)."),
    Column("fink_jdstarthist_dt", pa.float64(), "fast_transient_rate: jd_first_real_det - "
           "jdstarthist [days]."),
    Column("fink_mag_rate", pa.float64(), "fast_transient_rate: mean magnitude rate from the "
           "last same-band point [mag/day, negative = brightening], sampled per alert."),
    Column("fink_sigma_rate", pa.float64(), "fast_transient_rate: standard deviation of the "
           "sampled rate [mag/day]."),
    Column("fink_lower_rate", pa.float64(), "fast_transient_rate: 5th percentile of the "
           "sampled rate [mag/day]."),
    Column("fink_upper_rate", pa.float64(), "fast_transient_rate: 95th percentile of the "
           "sampled rate [mag/day]."),
    Column("fink_delta_time", pa.float64(), "fast_transient_rate: time from the point used to "
           "the alert [days]."),
    Column("fink_from_upper", pa.bool_(), "fast_transient_rate: the point used is an upper "
           "limit (null when there is no earlier point in the band)."),
)

#: The whole model, in order.
COLUMNS: tuple[Column, ...] = CORE_COLUMNS + PROMOTED_COLUMNS

#: Names of the model's columns, in order.
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)

_PANDAS_DTYPES: dict[str, str] = {
    "string": "object",
    "double": "float64",
    "int32": "Int32",
    "bool": "bool",
}


def arrow_schema() -> pa.Schema:
    """Arrow schema of the flattened alert model.

    Returns
    -------
    pyarrow.Schema
        One field per model column, in order, with its nullability and doc metadata.

    Examples
    --------
    >>> schema = arrow_schema()
    >>> schema.field("obs_time").type
    TimestampType(timestamp[us, tz=UTC])
    >>> schema.names[:3]
    ['alert_id', 'object_id', 'survey']
    """
    return pa.schema(
        [pa.field(c.name, c.type, nullable=c.nullable, metadata={"doc": c.doc}) for c in COLUMNS]
    )


def pandas_dtype(column: Column) -> str:
    """Pandas dtype used for a model column inside a pandas DataFrame.

    Parameters
    ----------
    column : Column
        A model column.

    Returns
    -------
    str
        ``float64`` for doubles, ``int32`` or ``Int32`` (nullable) for int32, ``bool`` or
        ``boolean`` (nullable) for booleans, ``datetime64[ns, UTC]`` for timestamps,
        ``object`` for strings and lists.
    """
    if pa.types.is_timestamp(column.type):
        return "datetime64[ns, UTC]"
    if pa.types.is_list(column.type):
        return "object"
    name = str(column.type)
    if name == "bool" and column.nullable:
        return "boolean"
    if name == "int32" and not column.nullable:
        return "int32"
    return _PANDAS_DTYPES[name]


def to_arrow(df: pd.DataFrame, schema: pa.Schema | None = None) -> pa.Table:
    """Convert a DataFrame of the model (plus added columns) to an Arrow table.

    Parameters
    ----------
    df : pandas.DataFrame
        Output of :func:`fink_core.decode.flatten` or of a later stage.
    schema : pyarrow.Schema, optional
        Target schema; default :func:`arrow_schema` (then only model columns are
        taken).

    Returns
    -------
    pyarrow.Table
        The table, cast to the schema (raises if a value does not fit); no pandas
        metadata is attached.
    """
    target = schema if schema is not None else arrow_schema()
    table = pa.Table.from_pandas(df[target.names], schema=target, preserve_index=False)
    return table.replace_schema_metadata(target.metadata)
