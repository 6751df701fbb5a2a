"""A real browser on the portal: Debian's Chromium, headless, on the demo night.

The portal runs in uvicorn on a free port; Chromium loads the events page, an event
page (the event with the most candidates, and a GRB circle), the retracted event and
an object page, dumps the DOM after the scripts ran (``--dump-dom``) and takes a
screenshot of each (kept under the test's tmp folder). The set-up installs Chromium
with apt-get when it is missing and we are root (so a fresh CI machine gets it); the
test is skipped, saying why, only when that is impossible.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lxml.html
import pytest
import uvicorn
from sqlalchemy import select

from mm_broker.app.serve.app import create_app
from mm_broker.core import config
from mm_broker.core.db.migrate import engine_for
from mm_broker.core.db.schema import associations, events
from tests.portal.conftest import RETRACTED_EVENT

pytestmark = pytest.mark.services

WINDOW = "1400,1300"


def _chromium() -> str:
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("Chromium is not installed and apt-get cannot install it here "
                    "(not root, or no apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(["apt-get", "install", "-y", "chromium"], env=env,
                      capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=False)
        subprocess.run(["apt-get", "install", "-y", "chromium"], env=env, capture_output=True,
                       check=False)
    found = shutil.which("chromium")
    if not found:
        pytest.skip("apt-get could not install Chromium (no network to Debian's mirror?)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def portal(night: config.Settings) -> Iterator[str]:
    """The portal over the stored night, served by uvicorn in a thread."""
    port = _free_port()
    settings = night.with_values({"serve.port": port})
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    app.state.engine.dispose()


class Browser:
    """Headless Chromium: the DOM after load, and a screenshot."""

    def __init__(self, binary: str, shots: Path) -> None:
        self.binary, self.shots = binary, shots

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [self.binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--window-size={WINDOW}", "--timeout=15000", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)

    def dom(self, url: str) -> Any:
        out = self._run("--dump-dom", url)
        assert out.stdout.strip(), out.stderr[-2000:]
        return lxml.html.fromstring(out.stdout)

    def screenshot(self, url: str, name: str) -> Path:
        path = self.shots / f"{name}.png"
        out = self._run(f"--screenshot={path}", url)
        assert path.is_file() and path.stat().st_size > 10_000, out.stderr[-2000:]
        return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Browser:
    """Chromium (installed if missing) writing screenshots to a tmp folder."""
    return Browser(_chromium(), tmp_path_factory.mktemp("screenshots"))


def _records(settings: config.Settings, event_id: str, version: int) -> list[dict[str, Any]]:
    """Each alert of the region version once, as it stands (withdrawn if withdrawn)."""
    engine = engine_for(settings)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(associations.c.alert_id, associations.c.status,
                                       associations.c.record)
                                .where(associations.c.event_id == event_id,
                                       associations.c.region_version == version)).all()
    finally:
        engine.dispose()
    latest: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r.alert_id not in latest or r.status == "withdrawn":
            latest[r.alert_id] = dict(r.record)
    return sorted(latest.values(), key=lambda x: (x["rank"], x["alert_id"]))


def _busiest(settings: config.Settings, messenger: str | None = None) -> tuple[str, int]:
    engine = engine_for(settings)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(associations.c.event_id, associations.c.region_version,
                                       events.c.messenger)
                                .join(events, events.c.event_id == associations.c.event_id)
                                ).all()
    finally:
        engine.dispose()
    counts: dict[tuple[str, int], int] = {}
    for r in rows:
        if messenger is None or r.messenger == messenger:
            counts[(r.event_id, r.region_version)] = counts.get((r.event_id,
                                                                 r.region_version), 0) + 1
    return max(counts, key=lambda k: (counts[k], k))


def test_events_page_lists_every_event(portal: str, browser: Browser,
                                       night: config.Settings) -> None:
    doc = browser.dom(portal + "/")
    rows = doc.xpath("//table[@id='events']/tbody/tr[@data-event]")
    engine = engine_for(night)
    try:
        with engine.connect() as conn:
            stored = set(conn.execute(select(events.c.event_id)).scalars())
    finally:
        engine.dispose()
    assert {r.get("data-event") for r in rows} == stored
    retracted = next(r for r in rows if r.get("data-event") == RETRACTED_EVENT)
    assert "status-retracted" in retracted.get("class")
    badge = retracted.xpath(".//span[contains(@class, 'badge')]")[0]
    assert badge.text_content().strip() == "retracted"
    assert browser.screenshot(portal + "/", "events").is_file()


@pytest.mark.parametrize("messenger", [None, "GRB"])
def test_event_page_candidates_and_map(portal: str, browser: Browser, night: config.Settings,
                                       messenger: str | None) -> None:
    event_id, version = _busiest(night, messenger)
    records = _records(night, event_id, version)
    url = f"{portal}/events/{event_id}"
    doc = browser.dom(url)
    rows = doc.xpath("//table[@id='candidates']/tbody/tr[@data-alert]")
    assert [r.get("data-alert") for r in rows] == [x["alert_id"] for x in records]
    assert rows[0].get("data-rank") == "1"
    assert [int(r.get("data-rank")) for r in rows] == sorted(x["rank"] for x in records)
    box = doc.get_element_by_id("skymap")
    assert "ready" in box.get("class"), "the map script did not draw"
    assert int(box.get("data-contours")) >= 1
    assert len(box.xpath(".//svg//polygon")) >= 1
    markers = box.xpath(".//circle[contains(@class, 'marker')]")
    assert len(markers) == int(box.get("data-markers")) == len(records)
    assert {m.get("data-alert") for m in markers} == {x["alert_id"] for x in records}
    assert doc.get_element_by_id("event-status").text_content().strip() == "active"
    assert browser.screenshot(url, f"event-{messenger or 'busiest'}").is_file()


def test_a_retracted_event_shows_as_retracted(portal: str, browser: Browser) -> None:
    url = f"{portal}/events/{RETRACTED_EVENT}"
    doc = browser.dom(url)
    assert doc.get_element_by_id("event-status").text_content().strip() == "retracted"
    assert "retracted" in doc.get_element_by_id("retracted-banner").text_content()
    notices = doc.xpath("//table[@id='notices']/tbody/tr")
    assert any("retraction" in r.text_content() for r in notices)
    assert browser.screenshot(url, "retracted").is_file()


def test_object_page_draws_its_light_curve(portal: str, browser: Browser,
                                           night: config.Settings) -> None:
    event_id, version = _busiest(night)
    best = _records(night, event_id, version)[0]
    url = f"{portal}/objects/{best['survey']}/{best['object_id']}"
    doc = browser.dom(url)
    curve = doc.get_element_by_id("lightcurve")
    assert int(curve.get("data-points")) >= 1
    assert len(curve.xpath(".//circle[contains(@class, 'detection')]")) >= 1
    assert len(curve.xpath(".//line[contains(@class, 'trigger')]")) >= 1
    assert event_id in {a.text_content() for a in doc.xpath("//table[@id='object-events']//a")}
    assert "No cutouts" in doc.get_element_by_id("cutouts-note").text_content()
    assert browser.screenshot(url, "object").is_file()
