"""``mm-broker run`` on scratch resources, for the streaming benchmarks.

:class:`ScratchService` runs the service as a subprocess on the local services with
its own scratch database, alert topic, counterpart topic prefix, archive and
checkpoints, so a benchmark never mixes with the broker's own data;
:func:`comet_subscriber` is a real VTP subscriber of the local Comet broker.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from mm_broker.app.ingest import IngestResult, Limits, ingest
from mm_broker.core.config import Settings
from mm_broker.core.db.migrate import engine_for
from mm_broker.core.db.scratch import temporary_database
from publishers.config import PublishConfig
from publishers.kafka import Topics, delete_topics, ensure_topics

log = logging.getLogger("benchmarks.scratch_service")

#: Name of the service's checkpoint folder (``mm-broker run`` uses the default).
SERVICE_NAME = "service"


class ScratchService:
    """``mm-broker run`` as a subprocess on the local services, with its own scratch
    database, alert topic, counterpart topic prefix, archive and checkpoints (under a
    work folder), so a benchmark never mixes with the broker's own data.

    ``with`` makes the database and the topics; :meth:`start` starts the service and
    waits until both streaming queries have started. On exit the service is stopped
    (SIGTERM, then its process group is killed after 60 s), the topics deleted, the
    work folder removed unless it was given, and the database dropped.

    Parameters
    ----------
    settings : Settings
        Configuration of the local services.
    kind : str
        Benchmark name, in the topic, folder and log names.
    trigger : str
        Spark trigger interval of the service (``MM_ALERTS__TRIGGER``).
    workdir : Path, optional
        Work folder, kept afterwards (tests read the archive there); default a fresh
        folder under ``state_dir/bench``, removed afterwards.
    env : dict, optional
        More environment variables of the service (configuration overrides).
    """

    def __init__(self, settings: Settings, kind: str, trigger: str,
                 workdir: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.settings, self.trigger, self.env = settings, trigger, dict(env or {})
        self.tag = uuid.uuid4().hex[:8]
        self.topic_in, self.prefix = f"bench.{kind}.{self.tag}", f"bench{self.tag}"
        self.keep = workdir is not None
        self.work = Path(workdir) if workdir is not None else \
            settings.state_dir / "bench" / f"{kind}-{self.tag}"
        self.bootstrap = settings.kafka.bootstrap
        self.log_path = settings.state_dir / "logs" / f"bench-{kind}-{self.tag}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.counts: dict[str, Any] | None = None
        self._stack: ExitStack | None = None
        self.scratch: Settings = settings

    @property
    def archive(self) -> Path:
        """Archive folder of the service (raw and enriched alerts)."""
        return self.work / "archive"

    @property
    def checkpoints(self) -> Path:
        """Checkpoint folder of the service's streaming queries."""
        return self.work / "checkpoints"

    def query_folder(self, query: str) -> Path:
        """Checkpoint folder of ``coincidence`` or ``raw`` (the raw archive)."""
        return self.checkpoints / SERVICE_NAME / query

    def counterpart_topic(self, messenger: str = "X") -> str:
        """The service's counterpart topic of ``messenger`` (observations)."""
        return Topics(self.prefix).counterparts(messenger, "observation")

    def __enter__(self) -> ScratchService:
        self._stack = ExitStack()
        try:
            self.scratch = self._stack.enter_context(temporary_database(self.settings,
                                                                        "mm_bench"))
            self.work.mkdir(parents=True, exist_ok=True)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            pub = PublishConfig.from_settings(self.settings)
            admin = AdminClient(dict(pub.kafka))
            ensure_topics(admin, [self.topic_in], self.settings.kafka.partitions,
                          pub.replication_factor, pub.retention_ms)
            ensure_topics(admin, Topics(self.prefix).all(), pub.partitions,
                          pub.replication_factor, pub.retention_ms)
        except BaseException:
            self._cleanup()
            raise
        return self

    def ingest(self, payload: bytes) -> IngestResult:
        """Store a notice in the scratch database, as a listener would.

        Parameters
        ----------
        payload : bytes
            The notice as received.

        Returns
        -------
        IngestResult
            Its result, status ``stored``.

        Raises
        ------
        RuntimeError
            If the notice was not stored.
        """
        db = engine_for(self.scratch)
        try:
            result = ingest(db, payload, "bench", None, limits=Limits.from_settings(
                self.scratch))
        finally:
            db.dispose()
        if result.status != "stored":
            raise RuntimeError(f"bench notice not stored: {result.status} {result.reason}")
        return result

    def start(self, timeout: float = 240.0) -> float:
        """Start the service and wait until both streaming queries have started.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait.

        Returns
        -------
        float
            Seconds from the start of the process to both queries started.

        Raises
        ------
        RuntimeError
            If the service exited or its queries did not start in time.
        """
        env = {**os.environ, "MM_POSTGRES__DATABASE": str(self.scratch.get("postgres.database")),
               "MM_ALERTS__TOPICS": json.dumps([self.topic_in]),
               "MM_PUBLISH__TOPIC_PREFIX": self.prefix, "MM_ALERTS__TRIGGER": self.trigger,
               "MM_ALERTS__ARCHIVE_URI": self.archive.as_uri(),
               "MM_ALERTS__CHECKPOINT_URI": self.checkpoints.as_uri(), **self.env}
        t0 = time.time()
        with open(self.log_path, "wb") as log_file:  # the child keeps its own descriptor
            self.proc = subprocess.Popen([sys.executable, "-m", "mm_broker.app.cli", "run"],
                                         env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        proc = self.proc
        marks = [self.query_folder(q) / "metadata" for q in ("coincidence", "raw")]
        while not all(m.exists() for m in marks):
            if proc.poll() is not None:
                raise RuntimeError(f"mm-broker run exited ({proc.returncode}) before "
                                   f"its queries started; see {self.log_path}")
            if time.time() - t0 > timeout:
                raise RuntimeError(f"mm-broker run: queries not started after {timeout:.0f} s;"
                                   f" see {self.log_path}")
            time.sleep(0.5)
        return time.time() - t0

    def stop(self, timeout: float = 60.0) -> dict[str, Any] | None:
        """Stop the service: SIGTERM (it finishes its micro-batch), then kill.

        Parameters
        ----------
        timeout : float, optional
            Seconds between SIGTERM and SIGKILL of the process group.

        Returns
        -------
        dict or None
            The counts the service printed as its last JSON line, if any.
        """
        if self.proc is None:
            return self.counts
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        self.proc = None
        for line in reversed(self.log_path.read_text(errors="replace").splitlines()):
            if line.startswith("{"):
                try:
                    self.counts = json.loads(line)
                except ValueError:
                    continue
                break
        return self.counts

    def log_problems(self) -> dict[str, int]:
        """Lines of the service's log that tell of trouble, by kind."""
        kinds = {"java_out_of_memory": "java.lang.OutOfMemoryError",
                 "query_failed": "mm_broker.app.run: query ", "error_lines": " ERROR "}
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return {k: text.count(v) for k, v in kinds.items()}

    def _cleanup(self) -> None:
        try:
            self.stop()
        finally:
            try:
                delete_topics(PublishConfig.from_settings(self.settings),
                              [self.topic_in, *Topics(self.prefix).all()])
            except Exception as exc:  # noqa: BLE001 - clean-up must not hide the result
                log.warning("bench: topics of %s not deleted: %s", self.tag, exc)
            if not self.keep:
                shutil.rmtree(self.work, ignore_errors=True)
            if self._stack is not None:
                self._stack.close()

    def __exit__(self, *exc: object) -> None:
        self._cleanup()


def comet_subscriber(settings: Settings, work: Path, tag: str) -> subprocess.Popen[bytes]:
    """A real Comet subscriber of the local broker (as a user's VTP client would be).

    Parameters
    ----------
    settings : Settings
        Configuration (``[comet]``: host, broadcast port).
    work : Path
        Folder of its event database and of ``voevents/``, where it saves every VOEvent
        it receives.
    tag : str
        Unique part of its local IVORN.

    Returns
    -------
    subprocess.Popen
        The subscriber's process (stop it with :func:`stop_process`).
    """
    for name in ("voevents", "comet-db"):
        (work / name).mkdir(exist_ok=True)
    comet = settings.comet
    with open(work / "comet-subscriber.log", "wb") as log_file:  # the child keeps its own
        return subprocess.Popen(
            [sys.executable, "-m", "mm_broker.app.services.comet_launcher", "--bind", "127.0.0.1",
             "--", "-n", "--pidfile=", "comet",
             f"--remote={comet.host}:{comet.broadcast_port}",
             f"--local-ivo=ivo://mm-broker.bench/soak-{tag}", f"--eventdb={work / 'comet-db'}",
             "--save-event", f"--save-event-directory={work / 'voevents'}"],
            cwd=work, stdout=log_file, stderr=subprocess.STDOUT)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Terminate a child process, kill it after ``timeout`` seconds.

    Parameters
    ----------
    proc : subprocess.Popen
        The process.
    timeout : float, optional
        Seconds between SIGTERM and SIGKILL.
    """
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def checkpoint_offsets(folder: Path, topic: str) -> dict[int, int]:
    """Next offset per partition after the last micro-batch a query *committed*.

    Parameters
    ----------
    folder : Path
        The query's checkpoint folder (:meth:`ScratchService.query_folder`).
    topic : str
        The Kafka topic the query reads.

    Returns
    -------
    dict
        Partition → offset: ``offsets/<id>`` (what the batch read up to, written
        before it runs) of the highest ``<id>`` in ``commits/`` (written once the
        batch, publication included, is done); empty before the first commit.
    """
    try:
        done = [int(p.name) for p in (folder / "commits").iterdir() if p.name.isdigit()]
        if not done:
            return {}
        text = (folder / "offsets" / str(max(done))).read_text()
    except FileNotFoundError:
        return {}
    parts = json.loads(text.strip().splitlines()[-1]).get(topic, {})
    return {int(p): int(o) for p, o in parts.items()}


#: A micro-batch line of the service's log (``mm-broker`` logging format; the logger
#: is the streaming service's module, ``mm_broker.app.run`` today).
BATCH_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) INFO mm_broker[\w.]*: "
                        r"batch \d+: (\d+) alerts")


def batch_log(path: Path, t_start: float) -> list[tuple[float, int]]:
    """The micro-batches the service logged.

    Parameters
    ----------
    path : Path
        The service's log.
    t_start : float
        Origin of the times (Unix seconds).

    Returns
    -------
    list of tuple
        ``(seconds since t_start, alerts)`` of each micro-batch, in log order.
    """
    line = BATCH_LINE
    out = []
    for text in path.read_text(errors="replace").splitlines():
        m = line.match(text)
        if m:
            at = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
            out.append((round(at + int(m.group(2)) / 1e3 - t_start, 1), int(m.group(3))))
    return out
