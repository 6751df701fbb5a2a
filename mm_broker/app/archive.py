"""``mm-broker alerts archive``: the fink_core pipeline as a service, Kafka alert topics
→ Parquet archive (raw and enriched).

Application wiring: the Spark session, the catalogues, the Kafka source (with the
cluster's security options, the same as ``mm-broker run``), the run's provenance
(:func:`mm_broker.app.provenance.rule_versions`) and the two streaming queries of
:func:`fink_core.pipeline.start_archive`.
"""

from __future__ import annotations

import logging
from typing import Any

from fink_core import session as sparkmod
from fink_core.catalogues import load_default_catalogues
from fink_core.pipeline import start_archive
from fink_core.stream import read_kafka
from mm_broker.app.provenance import rule_versions
from mm_broker.core.config import Settings
from mm_broker.core.kafka import spark_source_options
from mm_broker.core.provenance import Provenance

log = logging.getLogger(__name__)


def archive(settings: Settings, topics: list[str] | None = None, once: bool = False,
            spark: Any = None, name: str = "alerts") -> dict[str, Any]:
    """Run the raw and enriched archive queries.

    Parameters
    ----------
    settings : Settings
    topics : list of str, optional
        Alert topics (default ``[alerts] topics``).
    once : bool
        Process what the topics hold now (``availableNow``), then return.
    spark : SparkSession, optional
        Session to use (default: :func:`fink_core.session.session`).
    name : str
        Checkpoint sub-folder (one per independent pipeline).

    Returns
    -------
    dict
        Rows written by each query in this run.
    """
    spark = spark or sparkmod.session(settings, "mm_broker-fink_core")
    catalogues = load_default_catalogues(settings.catalogue_dir())
    # The same source options as `mm-broker run`: a secured cluster (TLS, SASL) is
    # reached by the archive too.
    kafka_df = read_kafka(spark, settings.kafka.bootstrap,
                          ",".join(topics or settings.alerts.topics),
                          max_offsets=settings.alerts.max_offsets_per_trigger,
                          options=spark_source_options(settings))
    trigger = {"availableNow": True} if once else \
        {"processingTime": settings.alerts.trigger}
    provenance = Provenance.from_settings(settings, catalogues, rule_versions())
    queries = start_archive(spark, kafka_df, catalogues, settings.archive_uri(),
                            f"{settings.checkpoint_uri()}/{name}", trigger,
                            provenance=provenance)
    try:
        for q in queries:
            q.awaitTermination()
    except KeyboardInterrupt:
        log.info("stopping the archive queries")
    finally:
        for q in queries:
            q.stop()
    counts: dict[str, Any] = {}
    for q in queries:
        progress = q.recentProgress or []
        counts[q.name] = int(sum(p.get("numInputRows", 0) for p in progress))
    return counts


__all__ = ["archive"]
