"""Official sky maps by URL (issue 17): the fetcher against a real HTTP server on
127.0.0.1 serving the real maps of ``../shared/data/skymaps``, and ingest/replay with
real notices whose map is only linked or linked beside a circle.

Fault cases: a map over the size limit (announced and not announced), 404, 500 (then
retried), a timeout, a truncated body, a text/html error page, a body that is not
FITS, a redirect inside and one outside the allowlist, a host outside the allowlist
(never requested)."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

import skymaps
from listeners.parsers import parse
from mm_broker.app import skymap_fetch, skymap_http
from mm_broker.app.ingest import Limits, ingest, retry_pending_maps
from mm_broker.app.replay import load_notices
from mm_broker.app.skymap_fetch import MapCache, with_official_map
from mm_broker.app.skymap_http import FetchPolicy, fetch_bytes
from mm_broker.core import config
from mm_broker.core.db.migrate import engine_for
from mm_broker.core.db.schema import raw_journal
from mm_broker.core.errors import SkymapFetchError
from mm_broker.core.models import Circle, Notice, Region, SkyMap

GW_MAP = "gw/MS220722v_bayestar.multiorder.fits"
GBM_MAP = "grb/GRB180116A_glg_healpix_all_bn180116026.fit"


class _Server:
    """A local HTTP server: ``/maps/<name>`` serves a real map; the fault paths below
    misbehave on purpose; every request path is recorded."""

    def __init__(self, maps: dict[str, bytes]) -> None:
        self.maps = maps
        self.requests: list[str] = []
        self.failures_before_ok = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, code: int, body: bytes, ctype: str = "application/fits",
                      length: int | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path
                owner.requests.append(path)
                name = path.rsplit("/", 1)[-1].split(",", 1)[0]
                if path.startswith("/maps/") and name in owner.maps:
                    self._send(200, owner.maps[name])
                elif path.startswith("/flaky/"):
                    if owner.failures_before_ok > 0:
                        owner.failures_before_ok -= 1
                        self._send(500, b"busy", "text/plain")
                    else:
                        self._send(200, owner.maps[name])
                elif path == "/500":
                    self._send(500, b"server error", "text/plain")
                elif path == "/slow":
                    time.sleep(3.0)
                    self._send(200, owner.maps["bayestar.multiorder.fits"])
                elif path == "/truncated":
                    body = owner.maps["bayestar.multiorder.fits"]
                    self._send(200, body[: len(body) // 2], length=len(body))
                elif path == "/html":
                    self._send(200, b"<html><body>maintenance</body></html>", "text/html")
                elif path == "/notfits":
                    self._send(200, b"\x00\x01 this is not a FITS file" * 100)
                elif path == "/gzip-notfits":
                    self._send(200, gzip.compress(b"hello, not FITS" * 100))
                elif path == "/big-unannounced":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/fits")
                    self.end_headers()
                    self.wfile.write(owner.maps["bayestar.multiorder.fits"])
                elif path == "/redirect-in":
                    self.send_response(302)
                    self.send_header("Location", "/maps/bayestar.multiorder.fits")
                    self.end_headers()
                elif path == "/redirect-out":
                    self.send_response(302)
                    self.send_header("Location", "https://example.org/bayestar.multiorder.fits")
                    self.end_headers()
                else:
                    self._send(404, b"not found", "text/plain")

        class Quiet(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that gave up (the timeout case) breaks the pipe

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[_Server]:
    maps = {
        "bayestar.multiorder.fits": (data_dir / "skymaps" / GW_MAP).read_bytes(),
        "glg_healpix_all_bn180116026.fit": (data_dir / "skymaps" / GBM_MAP).read_bytes(),
    }
    srv = _Server(maps)
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture(autouse=True)
def _no_held_hosts() -> None:
    skymap_http._held.clear()


def _policy(**changes: object) -> FetchPolicy:
    base = FetchPolicy(enabled=True, hosts=("127.0.0.1",), http_hosts=("127.0.0.1",),
                       timeout_s=1.0, max_bytes=2_000_000, attempts=2, backoff_s=0.01)
    return replace(base, **changes)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- #
# The fetcher alone
# --------------------------------------------------------------------------- #


def test_fetches_a_real_map(server: _Server) -> None:
    data = fetch_bytes(server.url("/maps/bayestar.multiorder.fits"), _policy())
    assert data == server.maps["bayestar.multiorder.fits"]


def test_redirect_inside_the_allowlist_is_followed(server: _Server) -> None:
    assert fetch_bytes(server.url("/redirect-in"), _policy()) == \
        server.maps["bayestar.multiorder.fits"]


def test_redirect_outside_the_allowlist_is_refused(server: _Server) -> None:
    with pytest.raises(SkymapFetchError, match=r"redirect \(302\) refused: host "
                                                r"'example.org' is not in") as info:
        fetch_bytes(server.url("/redirect-out"), _policy())
    assert not info.value.retryable


def test_host_outside_the_allowlist_is_never_requested(server: _Server) -> None:
    before = len(server.requests)
    with pytest.raises(SkymapFetchError, match="not in skymaps.fetch_hosts"):
        fetch_bytes(server.url("/maps/bayestar.multiorder.fits"), _policy(hosts=("localhost",)))
    assert len(server.requests) == before


def test_plain_http_needs_its_host_listed(server: _Server) -> None:
    # Without fetch_http_hosts the URL is asked over https, which this server does not
    # speak: a clear (retryable) failure, never a silent plain-http download.
    with pytest.raises(SkymapFetchError) as info:
        fetch_bytes(server.url("/maps/bayestar.multiorder.fits"), _policy(http_hosts=()))
    assert info.value.retryable


@pytest.mark.parametrize(("path", "match", "retryable"), [
    ("/missing.fits", "HTTP 404", False),
    ("/500", r"HTTP 500 \(after 2 attempts\)", True),
    ("/slow", "timed out", True),
    ("/truncated", "truncated", True),
    ("/html", "content type 'text/html' is not a FITS map", False),
    ("/notfits", "is not a FITS file", False),
    ("/gzip-notfits", "is not a FITS file", False),
])
def test_fault_cases(server: _Server, path: str, match: str, retryable: bool) -> None:
    with pytest.raises(SkymapFetchError, match=match) as info:
        fetch_bytes(server.url(path), _policy())
    assert info.value.retryable is retryable


def test_oversized_map_announced_and_unannounced(server: _Server) -> None:
    size = len(server.maps["bayestar.multiorder.fits"])
    with pytest.raises(SkymapFetchError, match=f"{size} bytes announced, over skymaps"):
        fetch_bytes(server.url("/maps/bayestar.multiorder.fits"), _policy(max_bytes=size - 1))
    with pytest.raises(SkymapFetchError, match="more than skymaps.max_bytes"):
        fetch_bytes(server.url("/big-unannounced"), _policy(max_bytes=size - 1))


def test_a_5xx_is_retried_with_back_off(server: _Server) -> None:
    server.failures_before_ok = 1
    sleeps: list[float] = []
    data = fetch_bytes(server.url("/flaky/bayestar.multiorder.fits"), _policy(attempts=3),
                       sleep=sleeps.append)
    assert data == server.maps["bayestar.multiorder.fits"] and sleeps == [0.01]


def test_an_unreachable_host_is_held(server: _Server) -> None:
    with pytest.raises(SkymapFetchError, match="after 2 attempts"):
        fetch_bytes(server.url("/500"), _policy())
    before = len(server.requests)
    with pytest.raises(SkymapFetchError, match="unreachable moments ago") as info:
        fetch_bytes(server.url("/maps/bayestar.multiorder.fits"), _policy())
    assert info.value.retryable and len(server.requests) == before


def test_disabled_fetch_requests_nothing(server: _Server) -> None:
    before = len(server.requests)
    with pytest.raises(SkymapFetchError, match="skymaps.fetch = false"):
        fetch_bytes(server.url("/maps/bayestar.multiorder.fits"), _policy(enabled=False))
    assert len(server.requests) == before


def test_cache_is_keyed_by_url_and_content(tmp_path: Path) -> None:
    cache = MapCache(tmp_path)
    path = cache.put("https://a/m.fits", b"SIMPLE  = T")
    assert cache.get("https://a/m.fits") == b"SIMPLE  = T" and cache.get("https://b") is None
    path.write_bytes(b"SIMPLE  = F")  # bytes that no longer match the name: ignored
    assert cache.get("https://a/m.fits") is None


def test_local_name_and_replay_getter(data_dir: Path, tmp_path: Path) -> None:
    get = skymap_fetch.local_getter(data_dir, MapCache(tmp_path))
    notice = parse((data_dir / "notices/lvk/MS181101ab-3-Initial.xml").read_bytes())
    data, source = get("https://gracedb.ligo.org/api/superevents/MS181101ab/files/"
                       "bayestar.multiorder.fits,0", notice)
    assert data[:9] == b"SIMPLE  =" and source.startswith("local file")
    assert skymap_http.fits_object(data) == "MS181101ab"
    with pytest.raises(SkymapFetchError, match="replay does not fetch"):
        get("https://gracedb.ligo.org/api/superevents/S1/files/nothing-here.fits", notice)
    # Another event's map of the same name (every GraceDB map is bayestar.multiorder.fits)
    # is never taken for this one: its OBJECT card names its own event.
    other = replace(notice, event_id="LVK:MS260205v")
    with pytest.raises(SkymapFetchError, match="replay does not fetch"):
        get("https://gracedb.ligo.org/api/superevents/MS260205v/files/"
            "bayestar.multiorder.fits,1", other)
    # The data directory prefixes maps with their event: GBM's glg_healpix_all.
    gbm = parse((data_dir / "triggers/voevents/growth-too-marshal/"
                 "GRB180116A_Fermi_GBM_Fin_Pos.xml").read_bytes())
    assert gbm.skymap_url is not None
    _, source = get(gbm.skymap_url, gbm)
    assert source == "local file GRB180116A_glg_healpix_all_bn180116026.fit"


def test_circle_falls_back_when_the_map_is_unusable(data_dir: Path) -> None:
    # A notice whose linked map is FITS but no sky map keeps its circle, with a reason.
    notice = parse((data_dir / "triggers/voevents/growth-too-marshal/"
                    "GRB180116A_Fermi_GBM_Fin_Pos.xml").read_bytes())
    assert isinstance(notice.localisation, Circle) and notice.skymap_url

    def not_a_map(url: str, notice: Notice) -> tuple[bytes, str]:
        return b"SIMPLE  =                    T" + b" " * 2850, "test"

    def region_of(n: Notice) -> Region:
        assert n.localisation is not None
        return skymaps.region_for(n.localisation)

    kept, region, note = with_official_map(notice, not_a_map, region_of)
    assert kept is notice and region is not None and region.kind == "circle"
    assert note is not None and "fallback to the notice's circle" in note


# --------------------------------------------------------------------------- #
# Ingest and replay with real notices
# --------------------------------------------------------------------------- #


def _local_settings(settings: config.Settings, tmp_path: Path) -> config.Settings:
    return settings.with_values({
        "skymaps.fetch": True,  # the suite turns fetching off (tests/conftest.py)
        "skymaps.fetch_hosts": ["127.0.0.1"], "skymaps.fetch_http_hosts": ["127.0.0.1"],
        "skymaps.fetch_timeout_s": 2.0, "skymaps.fetch_attempts": 2,
        "skymaps.fetch_backoff_s": 0.01, "state_dir": str(tmp_path),
    })


def _lvk_initial(data_dir: Path, url: str) -> bytes:
    raw = (data_dir / "notices/lvk/MS181101ab-3-Initial.xml").read_bytes()
    old = b"https://emfollow.docs.ligo.org/userguide/_static/bayestar.multiorder.fits,0"
    assert old in raw
    return raw.replace(old, url.encode())


@pytest.mark.services
def test_ingest_fetches_journals_and_reuses_a_linked_map(
        server: _Server, fresh_db: config.Settings, data_dir: Path, tmp_path: Path) -> None:
    settings = _local_settings(fresh_db, tmp_path)
    limits = Limits.from_settings(settings)
    url = server.url("/maps/bayestar.multiorder.fits,0")
    engine = engine_for(settings)
    try:
        result = ingest(engine, _lvk_initial(data_dir, url), "dir", limits=limits)
        assert result.status == "stored", result.reason
        assert result.region is not None and result.region.kind == "skymap"
        assert result.reason is not None and "official map bayestar.multiorder.fits from " \
            "network" in result.reason
        with engine.connect() as conn:
            kept = conn.execute(select(raw_journal.c.payload, raw_journal.c.status)
                                .where(raw_journal.c.source == "skymap",
                                       raw_journal.c.topic == url)).one()
        assert bytes(kept.payload) == server.maps["bayestar.multiorder.fits"]
        assert kept.status == "skymap"
        # The same URL again (another notice): read from the journal, no request.
        before = len(server.requests)
        again = _lvk_initial(data_dir, url) + b"\n<!-- the same notice, other bytes -->\n"
        second = ingest(engine, again, "dir", limits=limits)
        assert second.reason is not None and "from journal" in second.reason
        assert len(server.requests) == before
    finally:
        engine.dispose()


@pytest.mark.services
def test_ingest_map_wins_over_the_circle_and_falls_back(
        server: _Server, fresh_db: config.Settings, data_dir: Path, tmp_path: Path) -> None:
    settings = _local_settings(fresh_db, tmp_path)
    limits = Limits.from_settings(settings)
    raw = (data_dir / "triggers/voevents/growth-too-marshal/"
           "GRB180116A_Fermi_GBM_Fin_Pos.xml").read_bytes()
    old = b"http://heasarc.gsfc.nasa.gov/FTP/fermi/data/gbm/triggers/2018/bn180116026/quicklook/"
    assert old in raw
    engine = engine_for(settings)
    try:
        served = ingest(engine, raw.replace(old, server.url("/maps/quicklook/").encode()), "dir",
                        limits=limits)
        assert served.status == "stored" and served.region is not None
        assert served.region.kind == "skymap", served.reason
        assert "replaces the notice's circle" in (served.reason or "")
        assert isinstance(served.notice.localisation, SkyMap)  # type: ignore[union-attr]
        # The same notice with its map missing (404): stored with its circle, reason named.
        missing = ingest(engine, raw.replace(old, server.url("/gone/quicklook/").encode()), "dir",
                         limits=limits)
        assert missing.region is not None and missing.region.kind == "circle"
        assert "HTTP 404" in (missing.reason or "") and "fallback to the notice's circle" \
            in (missing.reason or "")
    finally:
        engine.dispose()


@pytest.mark.services
def test_a_link_only_notice_is_rejected_then_retried(
        server: _Server, fresh_db: config.Settings, data_dir: Path, tmp_path: Path) -> None:
    settings = _local_settings(fresh_db, tmp_path)
    limits = Limits.from_settings(settings)
    engine = engine_for(settings)
    try:
        server.failures_before_ok = 10  # the map's server is down for now
        url = server.url("/flaky/bayestar.multiorder.fits")
        first = ingest(engine, _lvk_initial(data_dir, url), "dir", limits=limits)
        assert first.status == "rejected"
        assert first.reason is not None and first.reason.startswith("skymap_fetch: ")
        assert first.reason.endswith("; retryable")
        server.failures_before_ok = 0
        skymap_http._held.clear()
        (again,) = retry_pending_maps(engine, limits)
        assert again.status == "stored" and again.region is not None
        assert again.region.kind == "skymap"
        # A 404 is not retried.
        gone = ingest(engine, _lvk_initial(data_dir, server.url("/nothing.fits")), "dir",
                      limits=limits)
        assert gone.status == "rejected" and "HTTP 404" in (gone.reason or "")
        assert not (gone.reason or "").endswith("retryable")
        assert retry_pending_maps(engine, limits) == []
    finally:
        engine.dispose()


def test_replay_uses_the_local_map_of_the_data_dir(settings: config.Settings,
                                                   data_dir: Path, tmp_path: Path) -> None:
    # The MS181101ab VOEvents link the userguide's bayestar.multiorder.fits, which the
    # data directory holds: replay uses it offline.
    local = settings.with_values({"state_dir": str(tmp_path)})
    steps, rejected = load_notices([data_dir / "notices/lvk/MS181101ab-3-Initial.xml",
                                    data_dir / "notices/lvk/G298048-1-Initial.xml"], local)
    assert [s.region.kind for s in steps if s.region is not None] == ["skymap"]
    (missing,) = rejected
    assert missing.status == "rejected" and "replay does not fetch" in (missing.reason or "")
