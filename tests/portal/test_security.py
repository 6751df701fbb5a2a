"""Security of the portal: read-only, write token, size and rate limits, CORS off unless
configured, headers, no traceback and no secret in errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from mm_broker.app.serve.app import create_app
from mm_broker.app.serve.guard import RateLimiter
from mm_broker.core import config

pytestmark = pytest.mark.services


def _client(settings: config.Settings, **values: object) -> Iterator[TestClient]:
    app = create_app(settings.with_values(values) if values else settings)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    app.state.engine.dispose()


def test_writes_are_refused_without_a_configured_token(client: TestClient) -> None:
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        r = client.request(method, "/api/v1/events")
        assert r.status_code == 403 and r.json()["status"] == 403, method


def test_writes_need_the_token_from_the_environment(night: config.Settings,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    token = "s3cr3t-portal-token"  # noqa: S105
    monkeypatch.setenv("MM_TEST_PORTAL_TOKEN", token)
    for c in _client(night, **{"serve.token_env": "MM_TEST_PORTAL_TOKEN"}):
        assert c.post("/api/v1/events").status_code == 401
        wrong = c.post("/api/v1/events", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403 and token not in wrong.text
        # the right token passes the guard; there is no write endpoint: 405
        right = c.post("/api/v1/events", headers={"Authorization": f"Bearer {token}"})
        assert right.status_code == 405 and token not in right.text
        for path in ("/", "/api/v1/health", "/api/v1/openapi.json"):
            assert token not in c.get(path).text


def test_request_size_limit(client: TestClient, night: config.Settings) -> None:
    big = b"x" * (night.serve.max_request_bytes + 1)
    r = client.request("GET", "/api/v1/events", content=big)
    assert r.status_code == 413 and r.json()["status"] == 413
    assert client.get("/api/v1/events", headers={"Content-Length": "abc"}).status_code in (
        400, 413)


def test_rate_limit_per_client(night: config.Settings) -> None:
    for c in _client(night, **{"serve.rate_limit_per_min": 60, "serve.rate_limit_burst": 3}):
        codes = [c.get("/api/v1/events?limit=1").status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        r = c.get("/api/v1/events")
        assert r.json() == {"status": 429, "message": "too many requests"}
        assert int(r.headers["Retry-After"]) >= 1


def test_token_bucket_refills() -> None:
    limiter = RateLimiter(per_min=60, burst=2)
    assert [limiter.allow("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 1.0]
    assert limiter.allow("b", now=0.0) == 0.0  # another client has its own bucket
    assert limiter.allow("a", now=1.0) == 0.0  # one request per second back
    assert RateLimiter(per_min=0, burst=1).allow("a") == 0.0


def test_cors_off_by_default_and_on_when_configured(client: TestClient,
                                                    night: config.Settings) -> None:
    origin = {"Origin": "https://elsewhere.example"}
    r = client.get("/api/v1/events", headers=origin)
    assert "access-control-allow-origin" not in r.headers
    for c in _client(night, **{"serve.cors_origins": ["https://elsewhere.example"]}):
        r = c.get("/api/v1/events", headers=origin)
        assert r.headers["access-control-allow-origin"] == "https://elsewhere.example"
        r = c.get("/api/v1/events", headers={"Origin": "https://other.example"})
        assert "access-control-allow-origin" not in r.headers


def test_security_headers_and_no_traceback(client: TestClient) -> None:
    for path in ("/", "/api/v1/events", "/events/nope", "/api/v1/cone?ra=x&dec=y"):
        r = client.get(path)
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "Traceback" not in r.text and "postgresql" not in r.text.lower()
    page = client.get("/events/nope")
    assert page.status_code == 404 and "unknown event" in page.text


def test_the_store_away_is_a_503_without_details(night: config.Settings) -> None:
    away = night.with_values({"postgres.port": 1})
    app = create_app(away)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/api/v1/events")
        assert r.status_code == 503
        assert r.json() == {"status": 503, "message": "the store is unavailable"}
        assert c.get("/api/v1/health").json()["postgres"]["status"] == "down"
    app.state.engine.dispose()
