"""A single-node Apache Kafka 4.x broker in KRaft mode, from Maven Central jars.

No Debian or PyPI package ships Apache Kafka; the jars of ``org.apache.kafka:kafka_2.13``
and its dependencies are fetched once with Maven (:mod:`mm_broker.core.jars`).
The node is broker and controller at once, listens only on 127.0.0.1, keeps its logs
under ``<state_dir>/kafka`` and is formatted on first start.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient

from mm_broker.app.services.process import (
    kill,
    port_open,
    read_pid,
    spawn,
    terminate,
    wait_for,
)
from mm_broker.core import jars
from mm_broker.core.config import Settings
from mm_broker.core.errors import ServiceError
from mm_broker.core.kafka import log_config

LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {logfile}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
"""


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise ServiceError("java (>= 17) is needed to run the local Kafka broker")
    return java


@dataclass
class Kafka:
    """The local Kafka broker."""

    settings: Settings
    name: str = "kafka"

    @property
    def dir(self) -> Path:
        return self.settings.state_dir / "kafka"

    @property
    def pid_file(self) -> Path:
        return self.settings.state_dir / "run" / "kafka.pid"

    @property
    def logfile(self) -> Path:
        return self.settings.state_dir / "logs" / "kafka.log"

    @property
    def port(self) -> int:
        return self.settings.kafka.port

    def properties(self) -> str:
        """server.properties of the combined broker/controller node."""
        k = self.settings.kafka
        return "\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{k.controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{k.port},CONTROLLER://127.0.0.1:{k.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{k.port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={self.dir / 'data'}",
            f"num.partitions={k.partitions}",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "message.max.bytes=16777216",
            "log.retention.hours=168",
            "",
        ])

    def _classpath(self) -> str:
        folder = jars.kafka_jars(self.settings.cache_dir, self.settings.kafka.version)
        return f"{folder}/*"

    def _format(self, cp: str, props: Path) -> None:
        if (self.dir / "data" / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # '=' form: a base64url id may start with '-', which argparse would take for
        # an option (it did, 1 in 32 formats).
        proc = subprocess.run([_java(), "-cp", cp, "kafka.tools.StorageTool", "format",
                               f"--cluster-id={cluster_id}", "-c", str(props),
                               "--ignore-formatted"],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ServiceError(f"Kafka storage format failed:\n{proc.stdout}\n{proc.stderr}")

    def pid(self) -> int | None:
        return read_pid(self.pid_file, str(self.dir))

    def start(self) -> str:
        """Fetch jars (once), format storage (once) and start the broker; wait for it."""
        addr = f"kafka://127.0.0.1:{self.port}"
        if self.pid() is None:
            if port_open("127.0.0.1", self.port):
                raise ServiceError(f"port {self.port} is taken by another process")
            cp = self._classpath()
            self.dir.mkdir(parents=True, exist_ok=True)
            props = self.dir / "server.properties"
            props.write_text(self.properties())
            log4j = self.dir / "log4j2.properties"
            log4j.write_text(LOG4J2.format(logfile=self.dir / "server.log"))
            self._format(cp, props)
            heap = self.settings.kafka.heap
            cmd = [_java(), f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC",
                   "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={log4j}",
                   f"-Dkafka.logs.dir={self.dir}", "-cp", cp, "kafka.Kafka", str(props)]
            spawn(cmd, self.logfile, self.pid_file)
        wait_for(self._answers, 90, "Kafka", interval=0.5, log_file=self.logfile)
        return addr

    def _answers(self) -> bool:
        if not port_open("127.0.0.1", self.port):
            return False
        # The local broker is plaintext; librdkafka's log through Python logging.
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{self.port}",
                             **log_config(self.settings)})
        try:
            meta = admin.list_topics(timeout=2)
        except Exception:  # noqa: BLE001 - KafkaException while the broker starts
            return False
        return bool(meta.brokers)

    def stop(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        terminate(pid, timeout=30)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> bool:
        """SIGKILL the broker (a crash, for fault tests); return whether it was running."""
        return kill(self.pid(), self.pid_file)

    def status(self) -> str:
        pid = self.pid()
        return "stopped" if pid is None else f"running (pid {pid}) on 127.0.0.1:{self.port}"
