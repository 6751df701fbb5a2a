"""Where the private PostgreSQL cluster lives: the path choice, pointers and orphans
(:mod:`mm_broker.app.services.pg_layout`), on real folders, without a server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mm_broker.app.services import pg_layout
from mm_broker.app.services.pg_layout import ServerUser

ROOT = os.geteuid() == 0
OTHER = 54321  # an account that owns nothing here


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A folder every account can reach (pytest's own base folder is mode 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="mm-layout-", dir="/tmp"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _folder(path: Path, mode: int, uid: int | None = None, gid: int | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    if uid is not None or gid is not None:
        os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
    return path


def _owner() -> ServerUser:
    """An unprivileged account owning the folders the test chowns to it."""
    if ROOT:
        return ServerUser("owner", OTHER + 1, frozenset({OTHER + 1}))
    return ServerUser("me", os.getuid(), frozenset(os.getgroups()) | {os.getgid()})


def test_blocked_at_names_the_first_private_folder(open_tmp: Path) -> None:
    stranger = ServerUser("stranger", OTHER, frozenset({OTHER}))
    private = _folder(open_tmp / "home", 0o700)
    state = _folder(private / "clone" / ".mm", 0o755)
    assert pg_layout.blocked_at(state, stranger) == private
    assert pg_layout.blocked_at(open_tmp / "elsewhere" / ".mm", stranger) is None
    private.chmod(0o711)  # search without listing is enough
    assert pg_layout.blocked_at(state, stranger) is None
    (private / "clone").chmod(0o750)
    assert pg_layout.blocked_at(state, stranger) == private / "clone"
    # root reaches everything
    assert pg_layout.blocked_at(state, ServerUser("root", 0, frozenset({0}))) is None


def test_blocked_at_applies_owner_then_group_then_other_bits(open_tmp: Path) -> None:
    owner = _owner()
    uid, gid = (owner.uid, min(owner.gids)) if ROOT else (None, None)
    mine = _folder(open_tmp / "mine", 0o700, uid, gid)
    assert pg_layout.blocked_at(mine, owner) is None
    member = ServerUser("member", OTHER, frozenset({OTHER, mine.stat().st_gid}))
    stranger = ServerUser("stranger", OTHER, frozenset({OTHER}))
    assert pg_layout.blocked_at(mine, member) == mine
    mine.chmod(0o710)
    assert pg_layout.blocked_at(mine, member) is None
    assert pg_layout.blocked_at(mine, stranger) == mine
    # The kernel takes the group's bits for a member, even when the others' allow it.
    mine.chmod(0o701)
    assert pg_layout.blocked_at(mine, member) == mine
    assert pg_layout.blocked_at(mine, stranger) is None
    # ... and the owner's bits for the owner.
    mine.chmod(0o071)
    assert pg_layout.blocked_at(mine, owner) == mine


def test_choose_in_state_unless_the_server_account_cannot_reach_it(open_tmp: Path) -> None:
    stranger = ServerUser("postgres", OTHER, frozenset({OTHER}))
    server_home = open_tmp / "server-home"
    reachable = _folder(open_tmp / "work" / "mm" / ".mm", 0o755)
    private = _folder(open_tmp / "root-home", 0o700)
    hidden = _folder(private / "mm" / ".mm", 0o755)

    # Server runs as the invoking user: always in the state directory.
    assert pg_layout.choose(hidden, None, server_home) == pg_layout.in_state(hidden)
    inside = pg_layout.choose(reachable, stranger, server_home)
    assert not inside.relocated
    assert inside.datadir == reachable / "postgres" / "data"
    assert inside.sockdir == reachable / "postgres" / "run"
    assert inside.logfile == reachable / "logs" / "postgres.log"

    moved = pg_layout.choose(hidden, stranger, server_home)
    assert moved.relocated
    assert moved.home == server_home / pg_layout.home_name(hidden)
    assert moved.home.name.startswith("mm-")
    assert moved.datadir == moved.home / "data"
    assert moved.logfile == moved.home / "postgres.log"
    assert pg_layout.blocked_at(moved.datadir, stranger) is None
    # Two clones never share a cluster; one state directory always gets the same name.
    other = _folder(private / "mm2" / ".mm", 0o755)
    assert pg_layout.choose(other, stranger, server_home).home != moved.home
    assert pg_layout.choose(hidden, stranger, server_home) == moved
    assert stat_mode(private) == 0o700  # nothing was chmod-ed


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_the_recorded_layout_wins_over_a_new_choice(open_tmp: Path) -> None:
    stranger = ServerUser("postgres", OTHER, frozenset({OTHER}))
    server_home = open_tmp / "server-home"
    private = _folder(open_tmp / "root-home", 0o700)
    state = _folder(private / "mm" / ".mm", 0o755)

    # A cluster made inside the state directory while it was reachable stays there.
    (state / "postgres" / "data").mkdir(parents=True)
    (state / "postgres" / "data" / "PG_VERSION").write_text("16\n")
    assert pg_layout.choose(state, stranger, server_home) == pg_layout.in_state(state)
    shutil.rmtree(state / "postgres")

    # A relocated cluster is found through the pointer, even once the path is reachable
    # (or with another server home).
    layout = pg_layout.choose(state, stranger, server_home)
    pg_layout.record(state, layout)
    private.chmod(0o755)
    assert pg_layout.recorded(state) == layout
    assert pg_layout.choose(state, stranger, open_tmp / "elsewhere") == layout
    assert pg_layout.choose(state, None, server_home) == layout
    assert os.readlink(state / "logs" / "postgres.log") == str(layout.logfile)


def test_record_then_forget_leaves_no_pointer(open_tmp: Path) -> None:
    state = _folder(open_tmp / "mm" / ".mm", 0o755)
    layout = pg_layout.relocated(open_tmp / "server-home" / pg_layout.home_name(state))
    pg_layout.record(state, layout)
    layout.datadir.mkdir(parents=True)
    pg_layout.write_owner(layout, state)
    assert (state / "postgres" / "cluster").is_symlink()
    assert not pg_layout.is_orphan(layout.home)
    pg_layout.forget(state, layout)
    assert not layout.home.exists()
    assert not (state / "postgres" / "cluster").is_symlink()
    assert not (state / "logs" / "postgres.log").is_symlink()
    assert pg_layout.recorded(state) is None


def test_home_name_is_a_safe_file_name() -> None:
    name = pg_layout.home_name(Path("/root/my clone;rm -rf/.mm"))
    assert name.startswith("my_clone_rm_-rf_mm-")
    assert len(name.rsplit("-", 1)[1]) == 16
    assert "/" not in name and " " not in name
    assert pg_layout.home_name(Path("/root/mm/.mm")).startswith("mm-")
    assert pg_layout.home_name(Path("/root/mm/.mm/faults-4")).startswith("mm_faults-4-")
    assert pg_layout.home_name(Path("/")).startswith("root-")
    assert not pg_layout.home_name(Path("/root/.mm/x")).startswith(".")


def test_sweep_removes_only_stopped_clusters_of_vanished_state_dirs(open_tmp: Path) -> None:
    server_home = open_tmp / "server-home"

    def cluster(state: Path) -> pg_layout.Layout:
        state.mkdir(parents=True, exist_ok=True)
        layout = pg_layout.relocated(server_home / pg_layout.home_name(state))
        pg_layout.record(state, layout)
        layout.datadir.mkdir(parents=True)
        pg_layout.write_owner(layout, state)
        return layout

    kept = cluster(open_tmp / "a" / ".mm")
    gone = cluster(open_tmp / "b" / ".mm")
    shutil.rmtree(open_tmp / "b")  # a deleted clone
    recreated = cluster(open_tmp / "c" / ".mm")
    shutil.rmtree(open_tmp / "c" / ".mm")  # make clean, then a new state directory
    (open_tmp / "c" / ".mm" / "logs").mkdir(parents=True)
    creating = server_home / "being-created"
    creating.mkdir()  # no owner file yet: never touched
    live = cluster(open_tmp / "d" / ".mm")
    shutil.rmtree(open_tmp / "d")
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                               str(live.datadir)])
    try:
        (live.datadir / "postmaster.pid").write_text(f"{server.pid}\n{live.datadir}\n")
        deadline = time.monotonic() + 20
        while not pg_layout.server_alive(live) and time.monotonic() < deadline:
            time.sleep(0.05)  # until the child has exec-ed its command line
        assert pg_layout.server_alive(live)
        assert {p.name for p in server_home.iterdir() if pg_layout.is_orphan(p)} == {
            gone.home.name, recreated.home.name, live.home.name}
        removed = pg_layout.sweep_orphans(server_home)
    finally:
        server.kill()
        server.wait()
    assert sorted(removed) == sorted([gone.home, recreated.home])
    assert kept.home.is_dir() and creating.is_dir() and live.home.is_dir()
    assert not gone.home.exists() and not recreated.home.exists()
    assert not pg_layout.server_alive(live)  # the pid is gone now
    assert pg_layout.sweep_orphans(server_home) == [live.home]
    assert pg_layout.sweep_orphans(open_tmp / "no-such-folder") == []
