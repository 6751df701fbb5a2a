"""A private PostgreSQL cluster in the state directory, bound to 127.0.0.1.

The machine's PostgreSQL server binaries are used (``pg_config --bindir`` or
``/usr/lib/postgresql/<N>/bin``, N >= 15). When they are missing and we are root,
Debian's ``postgresql`` package is installed with apt-get; otherwise a clear error
says what to install. As root the server runs as an unprivileged system user
(PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mm_broker.app.services.process import ServiceError, port_open, wait_for
from mm_broker.core.config import Settings

MIN_VERSION = 15


def find_bindir() -> Path | None:
    """Folder of the newest installed PostgreSQL (>= 15) server binaries, if any."""
    candidates: list[tuple[int, Path]] = []
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        for sub in root.iterdir():
            if sub.name.isdigit() and (sub / "bin" / "initdb").exists():
                candidates.append((int(sub.name), sub / "bin"))
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir", "--version"], capture_output=True,
                             text=True, check=False).stdout.split("\n")
        match = re.search(r"(\d+)", out[1] if len(out) > 1 else "")
        if match and (Path(out[0]) / "initdb").exists():
            candidates.append((int(match.group(1)), Path(out[0])))
    candidates = [c for c in candidates if c[0] >= MIN_VERSION]
    return max(candidates)[1] if candidates else None


def ensure_binaries() -> Path:
    """Return the server bindir, installing Debian's package first if root and missing."""
    bindir = find_bindir()
    if bindir is not None:
        return bindir
    if os.geteuid() != 0:
        raise ServiceError(
            "PostgreSQL >= 15 server binaries not found; install Debian's 'postgresql' "
            "package (apt-get install postgresql) or set [postgres] url to a managed server"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ServiceError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    bindir = find_bindir()
    if bindir is None:
        raise ServiceError("installed 'postgresql' but found no server binaries")
    return bindir


@dataclass
class Postgres:
    """The local PostgreSQL service."""

    settings: Settings
    name: str = "postgres"

    @property
    def datadir(self) -> Path:
        return self.settings.state_dir / "postgres" / "data"

    @property
    def sockdir(self) -> Path:
        return self.settings.state_dir / "postgres" / "run"

    @property
    def logfile(self) -> Path:
        return self.settings.state_dir / "logs" / "postgres.log"

    @property
    def host(self) -> str:
        return str(self.settings.get("postgres.host"))

    @property
    def port(self) -> int:
        return int(self.settings.get("postgres.port"))

    def managed_externally(self) -> bool:
        """True when [postgres] url points at a server we do not run."""
        return bool(self.settings.get("postgres.url"))

    def _run_as(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        user = str(self.settings.get("postgres.system_user"))
        try:
            pwd.getpwnam(user)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                            "/usr/sbin/nologin", user], check=True)
        return ["runuser", "-u", user, "--"]

    def _chown(self, path: Path) -> None:
        if os.geteuid() != 0:
            return
        entry = pwd.getpwnam(str(self.settings.get("postgres.system_user")))
        for p in [path, *path.rglob("*")]:
            os.chown(p, entry.pw_uid, entry.pw_gid)
        # The server user must be able to reach the state directory.
        for parent in path.parents:
            if parent == Path("/"):
                break
            mode = parent.stat().st_mode
            if not mode & 0o001:
                raise ServiceError(
                    f"{parent} is not traversable by user "
                    f"{self.settings.get('postgres.system_user')}; choose a state_dir "
                    "under a world-traversable path"
                )

    def running(self) -> bool:
        bindir = find_bindir()
        if bindir is None or not (self.datadir / "PG_VERSION").exists():
            return False
        proc = subprocess.run(self._run_as() + [str(bindir / "pg_ctl"), "status", "-D",
                                                str(self.datadir)],
                              capture_output=True, text=True, check=False)
        return proc.returncode == 0

    def start(self) -> str:
        """Initialise (first time) and start the cluster; create the database."""
        if self.managed_externally():
            return f"external PostgreSQL ({self.settings.redacted()['postgres']['url']})"
        bindir = ensure_binaries()
        user = str(self.settings.get("postgres.user"))
        if not (self.datadir / "PG_VERSION").exists():
            self.datadir.mkdir(parents=True, exist_ok=True)
            self.sockdir.mkdir(parents=True, exist_ok=True)
            self._chown(self.datadir.parent)
            subprocess.run(self._run_as() + [
                str(bindir / "initdb"), "-D", str(self.datadir), "-U", user,
                "--auth=trust", "--encoding=UTF8", "--no-locale"],
                check=True, capture_output=True)
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        if not self.running():
            self.logfile.touch()
            self._chown(self.sockdir)
            if os.geteuid() == 0:
                entry = pwd.getpwnam(str(self.settings.get("postgres.system_user")))
                os.chown(self.logfile, entry.pw_uid, entry.pw_gid)
            opts = (f"-c listen_addresses={self.host} -p {self.port} "
                    f"-c unix_socket_directories={self.sockdir} -c fsync=on")
            proc = subprocess.run(self._run_as() + [
                str(bindir / "pg_ctl"), "start", "-D", str(self.datadir), "-w", "-t", "60",
                "-l", str(self.logfile), "-o", opts], capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise ServiceError(f"pg_ctl start failed: {proc.stderr}\n"
                                   f"{self.logfile.read_text(errors='replace')[-2000:]}")
        wait_for(lambda: port_open(self.host, self.port), 30, "PostgreSQL", log_file=self.logfile)
        self._create_database(bindir, user)
        return f"postgresql://{user}@{self.host}:{self.port}/{self.settings.get('postgres.database')}"

    def _create_database(self, bindir: Path, user: str) -> None:
        db = str(self.settings.get("postgres.database"))
        psql = [str(bindir / "psql"), "-h", self.host, "-p", str(self.port), "-U", user,
                "-d", "postgres", "-tAc"]
        out = subprocess.run(psql + ["SELECT datname FROM pg_database"], capture_output=True,
                             text=True, check=True).stdout.split()
        if db not in out:
            subprocess.run([str(bindir / "createdb"), "-h", self.host, "-p", str(self.port),
                            "-U", user, db], check=True, capture_output=True)

    def stop(self, mode: str = "fast") -> bool:
        """Stop the cluster if it runs; return whether it was running. ``mode`` is
        pg_ctl's: ``fast`` (default), ``smart``, or ``immediate`` (no checkpoint, as a
        crash: the next start runs recovery)."""
        if self.managed_externally() or not self.running():
            return False
        bindir = find_bindir()
        assert bindir is not None
        subprocess.run(self._run_as() + [str(bindir / "pg_ctl"), "stop", "-D",
                                         str(self.datadir), "-m", mode, "-w"],
                       capture_output=True, check=False)
        return True

    def status(self) -> str:
        if self.managed_externally():
            return "external"
        return f"running on {self.host}:{self.port}" if self.running() else "stopped"
