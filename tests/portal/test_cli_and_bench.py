"""``mm-broker serve`` as a user starts it, and a small ``bench portal``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from benchmarks.portal import bench_portal
from mm_broker.app.cli import COMMANDS
from mm_broker.core import config

pytestmark = pytest.mark.services

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_is_a_command() -> None:
    assert COMMANDS["serve"] == ("mm_broker.app.cli.serve", "the portal and REST API")


def test_mm_broker_serve_answers_and_stops_on_sigterm(night: config.Settings) -> None:
    port = _free_port()
    env = {**os.environ, "MM_POSTGRES__DATABASE": night.postgres.database,
           "MM_ALERTS__ARCHIVE_URI": night.archive_uri(), "MM_SERVE__TOKEN_ENV": "MM_X_TOKEN",
           "MM_X_TOKEN": "never-printed-token"}
    proc = subprocess.Popen([sys.executable, "-m", "mm_broker.app.cli", "serve", "--port",
                             str(port)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        assert first["serving"]["url"] == f"http://127.0.0.1:{port}/"
        assert first["serving"]["writes"] == "token required"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/events?limit=1",
                                            timeout=5) as r:
                    assert r.status == 200 and int(r.headers["X-Total-Count"]) >= 25
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    # uvicorn shuts down cleanly, then lets the signal end the process (-SIGTERM)
    assert proc.returncode in (0, -signal.SIGTERM), err[-2000:]
    assert "Application shutdown complete" in err
    assert "never-printed-token" not in out + err


def test_bench_portal_small(running: config.Settings) -> None:
    figures = bench_portal(running, n_events=200, n_candidates=4000, requests=10)
    for name in ("events", "candidates", "cone"):
        assert figures[f"{name}_p95_ms"] >= figures[f"{name}_median_ms"] > 0
        assert isinstance(figures[f"{name}_ok"], bool)
    assert figures["n_events"] == 200 and figures["cores"] >= 1
