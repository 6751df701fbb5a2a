"""Where the private PostgreSQL cluster keeps its files.

PostgreSQL refuses to run as root, so as root the server runs as an unprivileged
system user (``[postgres] system_user``). That user must reach the data directory. A
state directory under a private folder (a clone in root's home, mode 0700) is out of
its reach, and the user's folders are never chmod-ed. Then the cluster lives under
:data:`SERVER_HOME` instead, in a folder of its own per state directory, and the state
directory records where:

- **in the state directory** (``<state_dir>/postgres/{data,run}``, log in
  ``<state_dir>/logs/postgres.log``): when the server runs as the invoking user, or
  when the server user can reach the state directory;
- **relocated** (``SERVER_HOME/<name>-<hash of the state dir>/{data,run,postgres.log}``,
  owned by the server user, mode 0700): otherwise. The pointer
  ``<state_dir>/postgres/cluster`` is a symbolic link to that folder, and the folder
  names its state directory in a file ``state_dir``. ``services status``, ``down`` and
  ``clean`` follow the pointer; two state directories (two clones) never share a
  cluster; a new state directory at the path of a deleted one gets a new, empty
  cluster, as it would inside the state directory.

The choice is made once, when the cluster is created; afterwards the recorded layout is
followed. ``SERVER_HOME`` is ``/var/lib/postgresql/mm-broker``: Debian's folder for
PostgreSQL data, kept across reboots (a folder under ``/tmp`` would be lost at a reboot
or aged out by ``systemd-tmpfiles`` under a running server, while the archive and the
Spark checkpoints of the state directory remain).
"""

from __future__ import annotations

import hashlib
import logging
import os
import pwd
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from mm_broker.app.services.process import cmdline

log = logging.getLogger(__name__)

SERVER_HOME = Path("/var/lib/postgresql/mm-broker")
POINTER = Path("postgres") / "cluster"
OWNER_FILE = "state_dir"


@dataclass(frozen=True)
class ServerUser:
    """The account the server runs as when it is not the invoking user."""

    name: str
    uid: int
    gids: frozenset[int]

    @classmethod
    def lookup(cls, name: str) -> ServerUser:
        """Uid and groups of an existing account ``name``.

        Raises
        ------
        KeyError
            If there is no such account.
        """
        entry = pwd.getpwnam(name)
        return cls(name, entry.pw_uid, frozenset(os.getgrouplist(name, entry.pw_gid)))


@dataclass(frozen=True)
class Layout:
    """Folders and log of one cluster.

    Attributes
    ----------
    home : Path
        Folder holding ``data`` (the cluster) and ``run`` (its unix socket).
    logfile : Path
        The server's log (``pg_ctl -l``).
    relocated : bool
        Whether ``home`` is outside the state directory (under the server home).
    """

    home: Path
    logfile: Path
    relocated: bool

    @property
    def datadir(self) -> Path:
        """The cluster's data directory (``initdb -D``)."""
        return self.home / "data"

    @property
    def sockdir(self) -> Path:
        """The server's unix-socket directory."""
        return self.home / "run"


def blocked_at(path: Path, user: ServerUser) -> Path | None:
    """First folder from ``/`` down to ``path`` (included) that ``user`` cannot search.

    Applies the permission bits as the kernel does (owner bits for the owner, else group
    bits for a group of the user, else the others' bits). Folders that do not exist yet
    are skipped (whoever creates them chooses their mode).

    Parameters
    ----------
    path : Path
        An absolute path.
    user : ServerUser
        The account that must reach ``path``.

    Returns
    -------
    Path or None
        The first folder that stops ``user``, or ``None`` when ``user`` reaches ``path``.
    """
    if user.uid == 0:
        return None
    for folder in [*reversed(path.parents), path]:
        try:
            st = folder.stat()
        except FileNotFoundError:
            continue
        if st.st_uid == user.uid:
            bit = 0o100
        elif st.st_gid in user.gids:
            bit = 0o010
        else:
            bit = 0o001
        if not st.st_mode & bit:
            return folder
    return None


def home_name(state_dir: Path) -> str:
    """Name of the relocated cluster folder of ``state_dir``: readable and unique.

    Parameters
    ----------
    state_dir : Path
        The absolute state directory.

    Returns
    -------
    str
        ``<label>-<16 hex digits of its path's SHA-256>``, the label made of the names
        of the state directory and of its parent, without leading dots and repeats
        (``/root/mm/.mm`` → ``mm``, ``/root/mm/.mm/faults-4`` → ``mm_faults-4``).
    """
    words: list[str] = []
    for word in (state_dir.parent.name, state_dir.name):
        word = re.sub(r"[^A-Za-z0-9_.-]", "_", word).strip(".")
        if word and word not in words:
            words.append(word)
    label = "_".join(words)[:40] or "root"
    digest = hashlib.sha256(str(state_dir).encode()).hexdigest()[:16]
    return f"{label}-{digest}"


def in_state(state_dir: Path) -> Layout:
    """The layout inside the state directory."""
    return Layout(state_dir / "postgres", state_dir / "logs" / "postgres.log", False)


def relocated(home: Path) -> Layout:
    """The layout of a cluster folder outside the state directory."""
    return Layout(home, home / "postgres.log", True)


def recorded(state_dir: Path) -> Layout | None:
    """The layout of the cluster this state directory already has, if any."""
    pointer = state_dir / POINTER
    if pointer.is_symlink():
        return relocated(Path(os.readlink(pointer)))
    inside = in_state(state_dir)
    if (inside.datadir / "PG_VERSION").exists():
        return inside
    return None


def choose(state_dir: Path, user: ServerUser | None,
           server_home: Path = SERVER_HOME) -> Layout:
    """Where the cluster of ``state_dir`` lives (recorded) or will live (new).

    Parameters
    ----------
    state_dir : Path
        The absolute state directory.
    user : ServerUser or None
        The account the server runs as, ``None`` when it runs as the invoking user.
    server_home : Path
        Parent of relocated cluster folders.

    Returns
    -------
    Layout
        The recorded layout if the state directory has a cluster; else inside the state
        directory when the server's account reaches it, relocated otherwise.
    """
    found = recorded(state_dir)
    if found is not None:
        return found
    if user is None or blocked_at(state_dir, user) is None:
        return in_state(state_dir)
    return relocated(server_home / home_name(state_dir))


def server_alive(layout: Layout) -> bool:
    """Whether the postmaster recorded in the cluster's ``postmaster.pid`` runs.

    Read without the server's account: the pid, then that process's command line
    (which names the data directory; a recycled pid belongs to somebody else).
    """
    try:
        pid = int((layout.datadir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return str(layout.datadir) in cmdline(pid)


def record(state_dir: Path, layout: Layout) -> None:
    """Point the state directory at a relocated cluster (before the folder exists).

    The pointer comes first, so that a cluster folder with an owner file always has
    its pointer (:func:`sweep_orphans` relies on it). The server's log is linked from
    ``<state_dir>/logs/postgres.log``, where the other services' logs are.
    """
    pointer = state_dir / POINTER
    pointer.parent.mkdir(parents=True, exist_ok=True)
    if not pointer.is_symlink():
        pointer.symlink_to(layout.home, target_is_directory=True)
    link = state_dir / "logs" / "postgres.log"
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink():
        link.unlink()
    if not link.exists():
        link.symlink_to(layout.logfile)


def write_owner(layout: Layout, state_dir: Path) -> None:
    """Name the owning state directory inside a relocated cluster folder."""
    (layout.home / OWNER_FILE).write_text(f"{state_dir}\n")


def forget(state_dir: Path, layout: Layout) -> None:
    """Delete a relocated cluster folder and the state directory's pointers to it."""
    shutil.rmtree(layout.home, ignore_errors=True)
    for link in (state_dir / POINTER, state_dir / "logs" / "postgres.log"):
        if link.is_symlink():
            link.unlink()


def is_orphan(home: Path) -> bool:
    """Whether a relocated cluster folder lost its state directory.

    An orphan has an owner file, and its state directory is gone or no longer points
    at it (the state directory was deleted, ``make clean`` without ``services clean``,
    a deleted clone). Nothing can reach such a cluster any more.
    """
    try:
        state_dir = Path((home / OWNER_FILE).read_text().strip())
    except OSError:
        return False  # being created, or not ours
    pointer = state_dir / POINTER
    return not (pointer.is_symlink() and Path(os.readlink(pointer)) == home)


def sweep_orphans(server_home: Path = SERVER_HOME) -> list[Path]:
    """Delete the relocated clusters whose state directory is gone and that do not run.

    Parameters
    ----------
    server_home : Path
        Parent of relocated cluster folders.

    Returns
    -------
    list of Path
        The folders deleted.
    """
    removed: list[Path] = []
    if not server_home.is_dir():
        return removed
    for home in sorted(server_home.iterdir()):
        if not home.is_dir() or not is_orphan(home):
            continue
        if server_alive(relocated(home)):
            log.warning("orphan PostgreSQL cluster %s still runs; left alone", home)
            continue
        shutil.rmtree(home, ignore_errors=True)
        removed.append(home)
        log.info("removed orphan PostgreSQL cluster %s", home)
    return removed
