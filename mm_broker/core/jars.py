"""Fetch Java artifacts from Maven Central into the mm_broker cache.

Apache Kafka (the broker) and Spark's Kafka/Avro connectors are published only as
Maven artifacts; Maven itself resolves their dependency trees, so we hand it a small
POM (``maven/*.xml``) and let ``dependency:copy-dependencies`` lay the jars out in
``<cache_dir>/<name>-<version>/``. A marker file makes the fetch happen once.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from importlib import resources
from pathlib import Path

from mm_broker.core.errors import JarFetchError

log = logging.getLogger(__name__)


def fetch(cache_dir: Path, name: str, pom: str, properties: dict[str, str]) -> Path:
    """Ensure the runtime jars of ``pom`` are in the cache; return their folder.

    Parameters
    ----------
    cache_dir : Path
        Root of the cache (the Maven local repository is ``cache_dir/m2``).
    name : str
        Short name of the jar set (``"kafka"``, ``"spark-connectors"``).
    pom : str
        File name of a POM under ``mm_broker/core/maven``.
    properties : dict
        Maven properties overriding the POM's (e.g. ``{"kafka.version": "4.1.1"}``).

    Returns
    -------
    Path
        Folder holding the jars.
    """
    version = "-".join(properties[k] for k in sorted(properties))
    dest = cache_dir / f"{name}-{version}"
    marker = dest / ".complete"
    if marker.exists():
        return dest
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JarFetchError("Maven (mvn) is not installed; it is needed to fetch jars")
    dest.mkdir(parents=True, exist_ok=True)
    pom_path = resources.files("mm_broker.core").joinpath("maven", pom)
    with resources.as_file(pom_path) as pom_file:
        cmd = [mvn, "-q", "-B", "-f", str(pom_file), "dependency:copy-dependencies",
               f"-DoutputDirectory={dest}", "-DincludeScope=runtime",
               f"-Dmaven.repo.local={cache_dir / 'm2'}"]
        cmd += [f"-D{k}={v}" for k, v in properties.items()]
        started = time.monotonic()
        log.info("fetching %s jars from Maven Central into %s", name, dest)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise JarFetchError(
            f"mvn failed to fetch {name} ({properties}):\n"
            f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    marker.write_text(f"{time.monotonic() - started:.1f}\n")
    return dest


def kafka_jars(cache_dir: Path, version: str) -> Path:
    """Folder of the Apache Kafka broker jars for ``version``."""
    return fetch(cache_dir, "kafka", "kafka-pom.xml", {"kafka.version": version})


def spark_connector_jars(cache_dir: Path, spark_version: str) -> list[Path]:
    """The Kafka-source and Avro connector jars (with dependencies) for Spark."""
    folder = fetch(cache_dir, "spark-connectors", "spark-pom.xml",
                   {"spark.version": spark_version})
    return sorted(folder.glob("*.jar"))
