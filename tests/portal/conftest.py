"""The demo night stored once for the portal's tests, in a scratch database.

The notices of the demo (``make demo``'s step 3: the GRB VOEvents of 2024-01 and the
LVK notices, ingested into PostgreSQL as versioned events and regions), a real LVK
alert and its real retraction (MS181101ab), and the replay of the night of 2024-01-15
with ``publish=True`` (associations in the store's outbox, records on the local Kafka,
VOEvents through the local Comet, under a topic prefix of their own). The alert
archive is an enriched archive of that night's alerts written under the test's tmp
folder in fink_core's layout (``enriched/night=…``), so the object pages read a real
light curve with upper limits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from fastapi.testclient import TestClient

from fink_core import model
from fink_core.files import read_alert_files
from mm_broker.app.demo import NIGHT_ALERTS, NIGHT_NOTICES, ingest_night
from mm_broker.app.ingest import Limits, ingest
from mm_broker.app.replay import replay
from mm_broker.app.serve.app import create_app
from mm_broker.core import config
from mm_broker.core.db.migrate import engine_for
from mm_broker.core.db.scratch import temporary_database

RETRACTED = ("notices/lvk/MS181101ab-preliminary.json", "notices/lvk/MS181101ab-retraction.json")
RETRACTED_EVENT = "LVK:MS181101ab"


def write_archive(root: Path, alert_paths: list[Path]) -> None:
    """An enriched archive of the alerts (model columns, partitioned by night)."""
    frame = read_alert_files(alert_paths)
    table = model.to_arrow(frame)
    nights = pa.array(frame["obs_time"].dt.strftime("%Y%m%d").tolist(), pa.string())
    ds.write_dataset(table.append_column("night", nights), str(root / "enriched"),
                     format="parquet", partitioning=["night"], partitioning_flavor="hive")


@pytest.fixture(scope="package")
def night(running: config.Settings, data_dir: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[config.Settings]:
    """Settings of a scratch store holding the demo night (module docstring)."""
    tmp = tmp_path_factory.mktemp("portal")
    write_archive(tmp / "archive", [data_dir / p for p in NIGHT_ALERTS])
    with temporary_database(running, "mm_portal") as scratch:
        settings = scratch.with_values({
            "publish.topic_prefix": f"portal{uuid.uuid4().hex[:8]}",
            "alerts.archive_uri": (tmp / "archive").as_uri(),
            "alerts.checkpoint_uri": (tmp / "checkpoints").as_uri(),
            "serve.rate_limit_per_min": 0})
        ingest_night(settings)
        engine = engine_for(settings)
        try:
            for rel in RETRACTED:
                ingest(engine, (data_dir / rel).read_bytes(), "dir", rel,
                       limits=Limits.from_settings(settings))
        finally:
            engine.dispose()
        notices = [str(data_dir / p) for p in (*NIGHT_NOTICES, *RETRACTED)]
        replay(settings, notices, [str(data_dir / p) for p in NIGHT_ALERTS], tmp / "replay",
               publish=True)
        yield settings


@pytest.fixture(scope="package")
def client(night: config.Settings) -> Iterator[TestClient]:
    """The portal over the stored night (server errors answered, not raised)."""
    app = create_app(night)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    app.state.engine.dispose()
