"""The fink_core Spark pipeline: Kafka (or files) → decode → flags → annotation → archive.

Stages are DataFrame → DataFrame steps; the science is the pure pandas code of
:mod:`fink_core.decode` and :mod:`fink_core.annotate`, run by one ``mapInPandas``
(:func:`enrich_batches`). Catalogues are loaded once on the driver and shipped to
the workers as a broadcast variable: nothing inside the UDF reads files or the
environment.

Archive layout (a URI: a local folder by default, any Hadoop-compatible store on a
cluster)::

    <archive>/raw/night=YYYYMMDD/…parquet        Kafka key, value (the alert bytes),
                                                 topic, partition, offset, timestamp
    <archive>/enriched/night=YYYYMMDD/hpx1=K/…   one row per decoded alert: the model
                                                 columns, the added columns, ipix29 and
                                                 the Kafka coordinates, and the
                                                 provenance columns; a payload that
                                                 does not decode is a row with
                                                 ``decode_error`` set (and its bytes are
                                                 in raw/)

``night`` is the UTC date of the observation (of the Kafka timestamp in raw/);
``hpx1`` is the order-1 nested HEALPix cell (48 on the sky) and ``ipix29`` the
order-29 index, so a search by sky region prunes partitions by night and coarse
cell, then row groups by ``ipix29``. Both streaming queries use Spark's Parquet
file sink with a checkpoint: after a kill and a restart every alert is in the
archive exactly once *for a reader of the committed files*: Spark's reader, or
:func:`fink_core.archive_files.archive_dataset` (never a glob of the folder, which also
sees the files of a batch interrupted before its commit). ``mm-broker run`` writes the
enriched folder from ``foreachBatch`` (:func:`write_enriched_batch`: temporary names,
renamed into place).

Every enriched row, decode-error rows included, carries the provenance of the run
that wrote it (:class:`mm_broker.core.provenance.Provenance`, built once per run and
passed to :func:`enriched_stream`, :func:`start_archive` and :func:`batch_files`), in
four string columns: ``prov_mm_broker_version``, ``prov_config_hash``,
``prov_catalogues`` (compact JSON, sorted keys: catalogue key → version) and
``prov_rules`` (compact JSON: rule set → version). Archives written before these
columns existed lack them: pyarrow datasets read the mixed folder (the columns are
null for old files), Spark needs ``mergeSchema`` to see them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import healpy as hp
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from fink_core import model
from fink_core.annotate import annotate, output_schema, rule_versions
from fink_core.archive_files import TEMPORARY_PREFIX
from fink_core.catalogues import Catalogue, catalogue_keys
from fink_core.catalogues import provenance as catalogue_provenance
from fink_core.decode import META_KEY, concat_frames, decode_avro, flatten
from mm_broker.core.errors import CorruptAlert, UnknownSchema
from mm_broker.core.models import IPIX_DTYPE
from mm_broker.core.provenance import PROVENANCE_COLUMNS, Provenance, catalogue_version

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery

#: Order of the coarse HEALPix partition column.
PARTITION_ORDER = 1
#: Columns added by the pipeline after the annotation.
PIPELINE_COLUMNS = ("ipix29", "hpx1", "night", "kafka_topic", "kafka_partition",
                    "kafka_offset", "decode_error", *PROVENANCE_COLUMNS)


def enriched_arrow_schema(keys: Sequence[str]) -> pa.Schema:
    """Arrow schema of the enriched rows for catalogues ``keys``."""
    base = output_schema(keys)
    extra = [pa.field("ipix29", pa.int64()), pa.field("hpx1", pa.int32()),
             pa.field("night", pa.string()), pa.field("kafka_topic", pa.string()),
             pa.field("kafka_partition", pa.int32()), pa.field("kafka_offset", pa.int64()),
             pa.field("decode_error", pa.string()),
             *(pa.field(name, pa.string()) for name in PROVENANCE_COLUMNS)]
    # Every column nullable: a payload that does not decode is a row of nulls but for
    # its Kafka coordinates and decode_error.
    return pa.schema([f.with_nullable(True) for f in list(base) + extra])


def spark_schema(keys: Sequence[str]) -> Any:
    """Spark StructType of the enriched rows (for ``mapInPandas``)."""
    from pyspark.sql.pandas.types import from_arrow_schema  # pyspark is heavy: lazy

    return from_arrow_schema(enriched_arrow_schema(keys))


def enrich(values: Sequence[bytes], catalogues: Sequence[Catalogue],
           topics: Sequence[str | None] | None = None,
           partitions: Sequence[int | None] | None = None,
           offsets: Sequence[int | None] | None = None, *,
           provenance: Provenance | None = None, fink: bool = True) -> pd.DataFrame:
    """Decode, flag and annotate a batch of alert payloads (pure pandas).

    Parameters
    ----------
    values : sequence of bytes
        Alert packets (Avro).
    catalogues : sequence of Catalogue
        Catalogues for the cross-match.
    topics, partitions, offsets : sequence, optional
        Kafka coordinates of each payload (kept on the rows).
    provenance : Provenance, optional
        Provenance of the run, written on every row (``prov_*`` columns). The
        pipeline (:func:`enrich_batches`) always passes the run's own; when omitted
        (direct calls: tests, fuzzing) it is :meth:`Provenance.default_config`: this
        version, the hash of the *default* configuration, ``catalogues`` and the rule
        sets applied here (:func:`fink_core.annotate.rule_versions`).
    fink : bool, optional
        Run Fink's science modules (:func:`fink_core.annotate.annotate`).

    Returns
    -------
    pandas.DataFrame
        Enriched rows, then one row per payload that failed to decode (with
        ``decode_error``), in the columns of :func:`enriched_arrow_schema`.
    """
    if provenance is None:
        provenance = Provenance.default_config(catalogues, rule_versions())
    n = len(values)
    topics = list(topics) if topics is not None else [None] * n
    partitions = list(partitions) if partitions is not None else [None] * n
    offsets = list(offsets) if offsets is not None else [None] * n
    decoded, index, failures = _decode(values)
    keys = [c.key for c in catalogues]
    schema = enriched_arrow_schema(keys)
    out = annotate(decoded, catalogues, fink=fink)
    _place(out)
    out["kafka_topic"] = [topics[i] for i in index]
    out["kafka_partition"] = pd.array([partitions[i] for i in index], dtype="Int32")
    out["kafka_offset"] = pd.array([offsets[i] for i in index], dtype="Int64")
    out["decode_error"] = None
    if failures:
        bad = pd.DataFrame({
            "kafka_topic": [topics[i] for i, _ in failures],
            "kafka_partition": pd.array([partitions[i] for i, _ in failures], dtype="Int32"),
            "kafka_offset": pd.array([offsets[i] for i, _ in failures], dtype="Int64"),
            "decode_error": [reason for _, reason in failures],
        })
        out = pd.concat([out, bad], ignore_index=True)
        # Rows of failed payloads: nulls, not NaN, in list and struct columns.
        for f in schema:
            if pa.types.is_nested(f.type) and f.name in out.columns:
                col = out[f.name]
                out[f.name] = col.where(col.map(lambda v: isinstance(v, (list, tuple, dict,
                                                                          np.ndarray))), None)
    for name, value in provenance.columns().items():  # every row, decode errors included
        out[name] = value
    return out.reindex(columns=schema.names)


def _place(out: pd.DataFrame) -> None:
    """Add ``ipix29``, ``hpx1`` and ``night`` to annotated alerts (in place)."""
    ra = out["ra"].to_numpy(dtype=float)
    dec = out["dec"].to_numpy(dtype=float)
    ok = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90)
    # IPIX_DTYPE, never float64: a float cannot hold order-29 indices (~3e18) exactly.
    ipix = np.zeros(len(out), dtype=IPIX_DTYPE)
    if ok.any():
        ipix[ok] = hp.ang2pix(2**29, ra[ok] % 360.0, dec[ok], nest=True, lonlat=True)
    out["ipix29"] = pd.array(ipix, dtype="Int64")
    out.loc[~ok, "ipix29"] = pd.NA
    out["hpx1"] = (out["ipix29"] // (4 ** (29 - PARTITION_ORDER))).astype("Int32")
    obs = pd.to_datetime(out["obs_time"], utc=True)
    out["night"] = obs.dt.strftime("%Y%m%d")


def enrich_frame(frame: pd.DataFrame, catalogues: Sequence[Catalogue], *,
                 provenance: Provenance | None = None) -> pd.DataFrame:
    """Annotate alerts already in the model (pure pandas), e.g. Fink's Parquet tables
    read by :func:`fink_core.files.read_alert_files`.

    Parameters
    ----------
    frame : pandas.DataFrame
        Alerts in the model of :mod:`fink_core.model`.
    catalogues : sequence of Catalogue
        Catalogues for the cross-match.
    provenance : Provenance, optional
        As for :func:`enrich`.

    Returns
    -------
    pandas.DataFrame
        The rows of ``frame`` in the columns of :func:`enriched_arrow_schema`, Kafka
        coordinates and ``decode_error`` null.
    """
    if provenance is None:
        provenance = Provenance.default_config(catalogues, rule_versions())
    schema = enriched_arrow_schema([c.key for c in catalogues])
    out = annotate(frame.reset_index(drop=True), catalogues)
    _place(out)
    out["kafka_topic"] = None
    out["kafka_partition"] = pd.array([pd.NA] * len(out), dtype="Int32")
    out["kafka_offset"] = pd.array([pd.NA] * len(out), dtype="Int64")
    out["decode_error"] = None
    for name, value in provenance.columns().items():
        out[name] = value
    return out.reindex(columns=schema.names)


#: What flattening a garbled but decodable record can raise.
_FLATTEN_ERRORS = (KeyError, AttributeError, TypeError, ValueError, OverflowError, IndexError)


def _decode(values: Sequence[bytes]) -> tuple[pd.DataFrame, list[int], list[tuple[int, str]]]:
    """Decode payloads; return the model frame, the payload index of each row, and
    ``(index, reason)`` for each payload that failed."""
    records: dict[str, list[dict[str, Any]]] = {s: [] for s in model.SURVEYS}
    origin: dict[str, list[int]] = {s: [] for s in model.SURVEYS}
    failures: list[tuple[int, str]] = []
    for i, value in enumerate(values):
        try:
            recs = decode_avro(bytes(value))
        except (CorruptAlert, UnknownSchema) as exc:
            failures.append((i, f"{type(exc).__name__}: {exc}"))
            continue
        if not recs:
            failures.append((i, "CorruptAlert: the payload holds no alert record"))
            continue
        for rec in recs:
            survey = rec[META_KEY]["survey"]
            records[survey].append(rec)
            origin[survey].append(i)
    frames: list[pd.DataFrame] = []
    index: list[int] = []
    for survey in (s for s in model.SURVEYS if records[s]):
        try:
            frames.append(flatten(records[survey], survey))
            index += origin[survey]
        except _FLATTEN_ERRORS:
            # A record that decodes but cannot be flattened (garbled values): isolate
            # it, keep the others.
            for rec, i in zip(records[survey], origin[survey], strict=True):
                try:
                    frames.append(flatten([rec], survey))
                    index.append(i)
                except _FLATTEN_ERRORS as exc:
                    failures.append((i, f"UnflattenableAlert: {type(exc).__name__}: {exc}"))
    frame = concat_frames(frames)
    return frame, index, failures


def enrich_batches(batches: Iterator[pd.DataFrame], catalogues: Any,
                   provenance: Provenance, fink: bool = True) -> Iterator[pd.DataFrame]:
    """``mapInPandas`` body over Kafka rows (``value``, ``topic``, ``partition``,
    ``offset``); ``catalogues`` is a Spark broadcast of the catalogue list,
    ``provenance`` the run's (stamped on every row); ``fink``: run Fink's modules."""
    cats = catalogues.value
    for batch in batches:
        yield enrich(list(batch["value"]), cats, list(batch["topic"]),
                     [int(p) for p in batch["partition"]], [int(o) for o in batch["offset"]],
                     provenance=provenance, fink=fink)


def enriched_stream(spark: SparkSession, kafka_df: DataFrame,
                    catalogues: Sequence[Catalogue], provenance: Provenance,
                    fink: bool = True) -> DataFrame:
    """Kafka DataFrame → enriched alerts DataFrame (stage chain).

    ``provenance`` is the run's (:meth:`Provenance.from_settings` with these
    ``catalogues``); every row carries it in the ``prov_*`` columns. ``fink`` false
    leaves the ``fink_*`` columns null (the benchmark's comparison).
    """
    _check_provenance(provenance, catalogues)
    keys = catalogue_keys(catalogues)
    bc = spark.sparkContext.broadcast(list(catalogues))
    rows = kafka_df.select("value", "topic", "partition", "offset")
    return rows.mapInPandas(lambda it: enrich_batches(it, bc, provenance, fink),
                            spark_schema(keys))


def _check_provenance(provenance: Provenance, catalogues: Sequence[Catalogue]) -> None:
    """Refuse a provenance that is missing or names other catalogues than those used."""
    if not isinstance(provenance, Provenance):
        raise TypeError(f"provenance must be a mm_broker.core.provenance.Provenance, "
                        f"not {type(provenance).__name__}")
    used = {k: catalogue_version(v) for k, v in catalogue_provenance(catalogues).items()}
    if provenance.catalogue_versions() != used:
        raise ValueError(f"the provenance names catalogues {provenance.catalogue_versions()}, "
                         f"the pipeline uses {used}")


def raw_stream(kafka_df: DataFrame) -> DataFrame:
    """Kafka DataFrame → raw archive rows (bytes kept as received)."""
    from pyspark.sql import functions as F  # pyspark is heavy: imported only when Spark is used

    return kafka_df.select("key", "value", "topic", "partition", "offset", "timestamp",
                           F.date_format(F.col("timestamp"), "yyyyMMdd").alias("night"))


def write_enriched_batch(frame: pd.DataFrame, archive_uri: str, batch_id: int,
                         keys: Sequence[str]) -> int:
    """Append one micro-batch of enriched alerts to ``<archive>/enriched``, idempotently.

    File names are derived from the batch id (``batch-<id>-<n>.parquet``): when Spark
    replays a micro-batch after a crash, the same files are written again and replace
    the first attempt, so every alert is in the archive once.

    Readers never see a file being written: each file is written under a hidden
    temporary name (``.tmp-batch-<id>-<token>-<n>.parquet``, skipped by pyarrow's and
    Spark's readers, see :mod:`fink_core.archive_files`) and renamed into place once
    complete (an atomic rename on a local or mounted file system, replacing the
    previous attempt's file). Temporary files of an earlier attempt at the same batch
    (the process died while writing) are removed.

    Parameters
    ----------
    frame : pandas.DataFrame
        Enriched rows (:func:`enriched_stream`, with the provenance columns).
    archive_uri : str
        Archive root (``file://`` URI or a path pyarrow's file systems know).
    batch_id : int
        Spark's micro-batch id.
    keys : sequence of str
        Catalogue keys (the columns of :func:`enriched_arrow_schema`).

    Returns
    -------
    int
        Rows written.
    """
    if len(frame) == 0:
        return 0
    missing = [c for c in PROVENANCE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"enriched batch without provenance columns {missing}: build it "
                         "with enriched_stream(..., provenance)")
    parsed = urlparse(archive_uri)
    if parsed.scheme in ("", "file"):
        fs: pafs.FileSystem = pafs.LocalFileSystem()
        base = unquote(parsed.path) if parsed.scheme == "file" else archive_uri
    else:
        fs, base = pafs.FileSystem.from_uri(archive_uri)
    table = pa.Table.from_pandas(frame, schema=enriched_arrow_schema(keys),
                                 preserve_index=False)
    prefix = f"{TEMPORARY_PREFIX}batch-{batch_id}-"
    token = uuid.uuid4().hex[:12]
    written: list[str] = []
    ds.write_dataset(table, f"{base}/enriched", format="parquet", filesystem=fs,
                     partitioning=["night", "hpx1"], partitioning_flavor="hive",
                     basename_template=f"{prefix}{token}-{{i}}.parquet",
                     existing_data_behavior="overwrite_or_ignore",
                     file_visitor=lambda f: written.append(f.path))
    for tmp in written:
        folder, name = tmp.rsplit("/", 1)
        fs.move(tmp, f"{folder}/batch-{batch_id}-{name[len(prefix) + len(token) + 1:]}")
    for folder in {tmp.rsplit("/", 1)[0] for tmp in written}:
        for stale in fs.get_file_info(pafs.FileSelector(folder)):
            if stale.base_name.startswith(prefix):
                fs.delete_file(stale.path)
    return len(frame)


def start_archive(spark: SparkSession, kafka_df: DataFrame, catalogues: Sequence[Catalogue],
                  archive_uri: str, checkpoint_uri: str, trigger: dict[str, Any] | None = None,
                  enriched: bool = True, *,
                  provenance: Provenance | None = None) -> list[StreamingQuery]:
    """Start the raw and (unless ``enriched`` is false) enriched archive queries
    (Parquet file sinks, checkpointed).

    ``provenance`` (the run's) is required for the enriched query; the raw query
    stores bytes only and needs none.
    """
    if enriched and provenance is None:
        raise ValueError("start_archive(enriched=True) needs the run's provenance")
    trig = trigger or {"processingTime": "2 seconds"}
    raw_q = (raw_stream(kafka_df).writeStream.format("parquet")
             .option("path", f"{archive_uri}/raw")
             .option("checkpointLocation", f"{checkpoint_uri}/raw")
             .partitionBy("night").trigger(**trig).queryName("archive_raw").start())
    if not enriched or provenance is None:
        return [raw_q]
    enr_q = (enriched_stream(spark, kafka_df, catalogues, provenance).writeStream
             .format("parquet")
             .option("path", f"{archive_uri}/enriched")
             .option("checkpointLocation", f"{checkpoint_uri}/enriched")
             .partitionBy("night", "hpx1").trigger(**trig).queryName("archive_enriched")
             .start())
    return [raw_q, enr_q]


def batch_files(spark: SparkSession, paths: Sequence[str],
                catalogues: Sequence[Catalogue], provenance: Provenance) -> DataFrame:
    """The same enrichment in batch over Avro files (replay and reprocessing), rows
    stamped with ``provenance``."""
    _check_provenance(provenance, catalogues)
    from pyspark.sql import functions as F  # pyspark is heavy: imported only when Spark is used

    files = (spark.read.format("binaryFile").option("pathGlobFilter", "*.avro")
             .option("recursiveFileLookup", "true").load(list(paths)))
    kafka_like = files.select(F.col("content").alias("value"), F.col("path").alias("topic"),
                              F.lit(0).alias("partition"), F.lit(0).cast("long").alias("offset"))
    keys = catalogue_keys(catalogues)
    bc = spark.sparkContext.broadcast(list(catalogues))
    return kafka_like.mapInPandas(lambda it: enrich_batches(it, bc, provenance),
                                  spark_schema(keys))
