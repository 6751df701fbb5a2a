"""The Spark session of mm_broker, with the Kafka and Avro connectors on its classpath.

The connector jars (``spark-sql-kafka-0-10`` and ``spark-avro`` of the installed
pyspark version) are fetched once from Maven Central by
:func:`mm_broker.core.jars.spark_connector_jars`; jars that pyspark already ships
(Scala library, Hadoop client, slf4j, ...) are left out so the classpath holds one
copy of each artifact. The user never passes ``--packages`` or ``--jars``.

The same code runs on one machine (``local[*]``) and on a cluster (``spark.master``
set to a master URL): nothing here assumes a local path other than the jar cache.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mm_broker.core.config import Settings
from mm_broker.core.jars import spark_connector_jars

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_VERSION_SUFFIX = re.compile(r"-\d[\w.\-]*\.jar$")


def _artifact(name: str) -> str:
    return _VERSION_SUFFIX.sub("", name)


def connector_jars(settings: Settings) -> list[Path]:
    """Connector jars to add to Spark's classpath (those pyspark does not ship)."""
    import pyspark  # pyspark is heavy: imported only when Spark is used

    wanted = settings.spark.version
    if pyspark.__version__ != wanted:
        raise RuntimeError(
            f"pyspark {pyspark.__version__} is installed but [spark] version is {wanted}: "
            "the connector jars must match the Spark version"
        )
    shipped = {_artifact(p.name) for p in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}
    return [j for j in spark_connector_jars(settings.cache_dir, wanted)
            if _artifact(j.name) not in shipped]


def session(settings: Settings, app_name: str = "mm_broker") -> SparkSession:
    """Get or create the Spark session configured from ``[spark]``.

    Parameters
    ----------
    settings : Settings
        Effective configuration.
    app_name : str
        Spark application name.

    Returns
    -------
    pyspark.sql.SparkSession
    """
    from pyspark.sql import SparkSession  # pyspark is heavy: imported only when Spark is used

    os.environ.setdefault("PYSPARK_PYTHON", _python())
    sp = settings.spark
    local = str(sp.master).startswith("local")
    if local:
        # One machine: keep the driver, block manager and workers on loopback.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    jars = ",".join(str(j) for j in connector_jars(settings))
    builder = (
        SparkSession.builder.appName(app_name)
        .master(str(sp.master))
        .config("spark.jars", jars)
        .config("spark.driver.memory", str(sp.driver_memory))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(sp.shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(sp.arrow_batch))
        .config("spark.sql.streaming.forceDeleteTempCheckpointLocation", "true")
        .config("spark.sql.warehouse.dir", str(settings.state_dir / "spark-warehouse"))
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.extraJavaOptions",
                f"-Dderby.system.home={settings.state_dir / 'derby'} "
                f"-Dlog4j2.configurationFile={_LOG4J}")
    )
    if local:
        # On a cluster the executors must reach the driver: Spark chooses its address.
        builder = (builder.config("spark.driver.bindAddress", "127.0.0.1")
                   .config("spark.driver.host", "127.0.0.1"))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


#: Log4j 2 configuration of the driver (warnings only, known noise silenced).
_LOG4J = Path(__file__).with_name("log4j2.properties")


def _python() -> str:
    return sys.executable
