"""The local Comet VTP broker (receiver and broadcaster), bound to 127.0.0.1."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from mm_broker.app.services.process import (
    kill,
    port_open,
    read_pid,
    spawn,
    terminate,
    wait_for,
)
from mm_broker.core.config import Settings
from mm_broker.core.errors import ServiceError


@dataclass
class Comet:
    """Comet broker: submissions on ``receive_port`` (whitelisted), VTP subscribers on
    ``broadcast_port``."""

    settings: Settings
    name: str = "comet"

    @property
    def dir(self) -> Path:
        return self.settings.state_dir / "comet"

    @property
    def pid_file(self) -> Path:
        return self.settings.state_dir / "run" / "comet.pid"

    @property
    def logfile(self) -> Path:
        return self.settings.state_dir / "logs" / "comet.log"

    @property
    def host(self) -> str:
        return self.settings.comet.host

    def command(self) -> list[str]:
        """The launcher command line (twistd in the foreground, no twistd pid file)."""
        c = self.settings.comet
        cmd = [sys.executable, "-m", "mm_broker.app.services.comet_launcher", "--bind", self.host,
               "--", "-n", "--pidfile=", "comet",
               "--receive", f"--receive-port={c.receive_port}",
               "--broadcast", f"--broadcast-port={c.broadcast_port}",
               f"--local-ivo={c.local_ivo}", f"--eventdb={self.dir / 'eventdb'}",
               "--broadcast-test-interval=0"]
        for net in c.whitelist:
            cmd.append(f"--author-whitelist={net}")
        return cmd

    def pid(self) -> int | None:
        return read_pid(self.pid_file, str(self.dir))

    def start(self) -> str:
        c = self.settings.comet
        addr = (f"vtp://{self.host}:{c.broadcast_port} "
                f"(submit to {self.host}:{c.receive_port})")
        if self.pid() is None:
            if port_open(self.host, c.receive_port):
                raise ServiceError(f"port {c.receive_port} is taken by another process")
            (self.dir / "eventdb").mkdir(parents=True, exist_ok=True)
            spawn(self.command(), self.logfile, self.pid_file, cwd=self.dir)
        wait_for(lambda: port_open(self.host, c.receive_port)
                 and port_open(self.host, c.broadcast_port), 30, "Comet",
                 log_file=self.logfile)
        return addr

    def stop(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        terminate(pid)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> bool:
        """SIGKILL the broker (a crash, for fault tests); return whether it was running."""
        return kill(self.pid(), self.pid_file)

    def status(self) -> str:
        c = self.settings.comet
        pid = self.pid()
        if pid is None:
            return "stopped"
        return f"running (pid {pid}) on {self.host}:{c.receive_port}/{c.broadcast_port}"
