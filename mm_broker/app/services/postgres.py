"""A private PostgreSQL cluster in the state directory, bound to 127.0.0.1.

The machine's PostgreSQL server binaries are used (``pg_config --bindir`` or
``/usr/lib/postgresql/<N>/bin``, N >= 15). When they are missing and we are root,
Debian's ``postgresql`` package is installed with apt-get; otherwise a clear error
says what to install. As root the server runs as an unprivileged system user
(PostgreSQL refuses to run as root); when that user cannot reach the state directory,
the cluster lives elsewhere (:mod:`mm_broker.app.services.pg_layout`).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import mm_broker.app.services.pg_layout as pg_layout
from mm_broker.app.services.process import port_open, wait_for
from mm_broker.core.config import Settings
from mm_broker.core.errors import ServiceError

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
    """The local PostgreSQL service.

    Its files are where :mod:`mm_broker.app.services.pg_layout` says: in the state
    directory, or (as root, when the server's account cannot reach the state
    directory) in a folder of its own under ``server_home``.
    """

    settings: Settings
    name: str = "postgres"
    server_home: Path = pg_layout.SERVER_HOME

    @property
    def layout(self) -> pg_layout.Layout:
        """Where the cluster lives (recorded) or will live (not created yet)."""
        return pg_layout.choose(self.settings.state_dir, self._server_user(), self.server_home)

    @property
    def datadir(self) -> Path:
        return self.layout.datadir

    @property
    def sockdir(self) -> Path:
        return self.layout.sockdir

    @property
    def logfile(self) -> Path:
        return self.layout.logfile

    @property
    def host(self) -> str:
        return self.settings.postgres.host

    @property
    def port(self) -> int:
        return self.settings.postgres.port

    def managed_externally(self) -> bool:
        """True when [postgres] url points at a server we do not run."""
        return bool(self.settings.postgres.url)

    def _server_user(self) -> pg_layout.ServerUser | None:
        """The account the server runs as (created if missing); ``None``: ourselves."""
        if os.geteuid() != 0:
            return None
        user = self.settings.postgres.system_user
        try:
            return pg_layout.ServerUser.lookup(user)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                            "/usr/sbin/nologin", user], check=True)
        return pg_layout.ServerUser.lookup(user)

    def _run_as(self) -> list[str]:
        user = self._server_user()
        return [] if user is None else ["runuser", "-u", user.name, "--"]

    def _as_server(self, cmd: list[str], check: bool = False) -> subprocess.CompletedProcess[str]:
        # cwd "/": the server's account may not reach ours (a private folder).
        return subprocess.run(self._run_as() + cmd, capture_output=True, text=True,
                              check=check, cwd="/")

    def _chown(self, path: Path) -> None:
        user = self._server_user()
        if user is None:
            return
        entry = pwd.getpwnam(user.name)
        for p in [path, *path.rglob("*")]:
            os.chown(p, entry.pw_uid, entry.pw_gid, follow_symlinks=False)

    def _prepare(self, layout: pg_layout.Layout) -> None:
        """Make the cluster's folders (first time), owned by the server's account."""
        state_dir = self.settings.state_dir
        if layout.relocated:
            if not (state_dir / pg_layout.POINTER).is_symlink():
                if layout.home.exists():
                    # Left by a deleted state directory at this same path: a new state
                    # directory starts with a new, empty cluster.
                    self._stop_cluster(layout, "fast")
                    shutil.rmtree(layout.home)
                pg_layout.record(state_dir, layout)
            if not (layout.datadir / "PG_VERSION").exists():
                self.server_home.mkdir(parents=True, exist_ok=True)
                layout.home.mkdir(mode=0o700, exist_ok=True)
                pg_layout.write_owner(layout, state_dir)
                layout.sockdir.mkdir(mode=0o700, exist_ok=True)
                layout.datadir.mkdir(mode=0o700, exist_ok=True)
                layout.logfile.touch()
                self._chown(layout.home)
            return
        user = self._server_user()
        blocked = None if user is None else pg_layout.blocked_at(state_dir, user)
        if blocked is not None:  # only a cluster made while the path was reachable
            raise ServiceError(
                f"{blocked} is not traversable by user {user.name if user else ''}, and "
                f"the PostgreSQL cluster in {layout.home} was created when it was; delete "
                f"{layout.home} and `services up` creates a new cluster under "
                f"{self.server_home}")
        layout.sockdir.mkdir(parents=True, exist_ok=True)
        layout.datadir.mkdir(parents=True, exist_ok=True)
        if (layout.datadir / "PG_VERSION").exists():
            self._chown(layout.sockdir)
        else:
            self._chown(layout.home)

    def running(self) -> bool:
        """Whether the cluster runs (``pg_ctl status``)."""
        bindir = find_bindir()
        layout = self.layout
        if bindir is None or not (layout.datadir / "PG_VERSION").exists():
            return False
        return self._as_server([str(bindir / "pg_ctl"), "status", "-D",
                                str(layout.datadir)]).returncode == 0

    def start(self) -> str:
        """Initialise (first time) and start the cluster; create the database."""
        if self.managed_externally():
            return f"external PostgreSQL ({self.settings.redacted()['postgres']['url']})"
        bindir = ensure_binaries()
        user = self.settings.postgres.user
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            pg_layout.sweep_orphans(self.server_home)
        layout = self.layout
        self._prepare(layout)
        if not (layout.datadir / "PG_VERSION").exists():
            self._as_server([str(bindir / "initdb"), "-D", str(layout.datadir), "-U", user,
                             "--auth=trust", "--encoding=UTF8", "--no-locale"], check=True)
        layout.logfile.parent.mkdir(parents=True, exist_ok=True)
        if not self.running():
            layout.logfile.touch()
            self._chown(layout.logfile)
            opts = (f"-c listen_addresses={self.host} -p {self.port} "
                    f"-c unix_socket_directories={layout.sockdir} -c fsync=on")
            proc = self._as_server([
                str(bindir / "pg_ctl"), "start", "-D", str(layout.datadir), "-w", "-t", "60",
                "-l", str(layout.logfile), "-o", opts])
            if proc.returncode != 0:
                raise ServiceError(f"pg_ctl start failed: {proc.stderr}\n"
                                   f"{layout.logfile.read_text(errors='replace')[-2000:]}")
        wait_for(lambda: port_open(self.host, self.port), 30, "PostgreSQL",
                 log_file=layout.logfile)
        self._create_database(bindir, user)
        return f"postgresql://{user}@{self.host}:{self.port}/{self.settings.postgres.database}"

    def _create_database(self, bindir: Path, user: str) -> None:
        db = self.settings.postgres.database
        psql = [str(bindir / "psql"), "-h", self.host, "-p", str(self.port), "-U", user,
                "-d", "postgres", "-tAc"]
        out = subprocess.run(psql + ["SELECT datname FROM pg_database"], capture_output=True,
                             text=True, check=True).stdout.split()
        if db not in out:
            subprocess.run([str(bindir / "createdb"), "-h", self.host, "-p", str(self.port),
                            "-U", user, db], check=True, capture_output=True)

    def _stop_cluster(self, layout: pg_layout.Layout, mode: str) -> bool:
        bindir = find_bindir()
        if bindir is None or not (layout.datadir / "PG_VERSION").exists():
            return False
        if self._as_server([str(bindir / "pg_ctl"), "status", "-D",
                            str(layout.datadir)]).returncode != 0:
            return False
        self._as_server([str(bindir / "pg_ctl"), "stop", "-D", str(layout.datadir),
                         "-m", mode, "-w"])
        return True

    def stop(self, mode: str = "fast") -> bool:
        """Stop the cluster if it runs; return whether it was running.

        Parameters
        ----------
        mode : str
            pg_ctl's shutdown mode: ``fast`` (default), ``smart``, or ``immediate`` (no
            checkpoint, as a crash: the next start runs recovery).
        """
        if self.managed_externally():
            return False
        return self._stop_cluster(self.layout, mode)

    def clean(self) -> bool:
        """Stop the cluster and delete it if it lives outside the state directory.

        A cluster inside the state directory goes with it (``make clean`` deletes the
        state directory); a relocated one would outlive it. Orphans of deleted state
        directories are swept too.

        Returns
        -------
        bool
            Whether a relocated cluster was deleted.
        """
        if self.managed_externally():
            return False
        self.stop()
        layout = pg_layout.recorded(self.settings.state_dir)
        if os.geteuid() == 0:
            pg_layout.sweep_orphans(self.server_home)
        if layout is None or not layout.relocated:
            return False
        pg_layout.forget(self.settings.state_dir, layout)
        return True

    def status(self) -> str:
        """``external``, ``running on HOST:PORT`` or ``stopped``."""
        if self.managed_externally():
            return "external"
        return f"running on {self.host}:{self.port}" if self.running() else "stopped"
