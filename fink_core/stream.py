"""Spark wiring of fink_core: the Kafka source and the Kafka sink's shape.

Decoding and annotation are in :mod:`fink_core.pipeline` (fastavro inside
``mapInPandas``: the survey packets are Avro *container* files, schema embedded,
which Spark's ``from_avro`` (schemaless datum with one fixed schema) cannot read).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

def read_kafka(spark: SparkSession, bootstrap: str, topic: str,
               starting_offsets: str = "earliest", max_offsets: int | None = None,
               options: Mapping[str, str] | None = None) -> DataFrame:
    """Streaming DataFrame of a Kafka topic (Spark's Kafka source).

    ``options`` are further source options, e.g. the ``kafka.security.protocol`` and
    SASL settings of :func:`mm_broker.core.kafka.spark_source_options`.
    """
    reader = (spark.readStream.format("kafka")
              .option("kafka.bootstrap.servers", bootstrap)
              .option("subscribe", topic)
              .option("startingOffsets", starting_offsets)
              .option("failOnDataLoss", "false"))
    for key, value in (options or {}).items():
        reader = reader.option(key, value)
    if max_offsets:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets))
    return reader.load()


def to_kafka_json(df: DataFrame, key_col: str) -> DataFrame:
    """Shape a DataFrame for the Kafka sink: ``key`` column and JSON ``value``."""
    from pyspark.sql import functions as F  # pyspark is heavy: imported only when Spark is used

    return df.select(F.col(key_col).cast("string").alias("key"),
                     F.to_json(F.struct(*df.columns)).alias("value"))
