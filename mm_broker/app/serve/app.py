"""The application factory of ``mm-broker serve``: :func:`create_app`.

One FastAPI application serves the REST API (:mod:`.api`), the pages (:mod:`.pages`)
and their static files, behind the :class:`.guard.Guard` middleware (size and rate
limits, write token, security headers) and, only when ``serve.cors_origins`` names
origins, Starlette's CORS middleware (``GET`` only).

Errors never show a traceback: an HTTP error or an invalid parameter becomes
``{"status": <code>, "message": "..."}`` under ``/api/`` and a short error page
elsewhere; an unexpected failure is logged on the server (with its traceback, never
with credentials) and answered with a 500 and a generic message; a store that is
away is a 503.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mm_broker import __version__
from mm_broker.app.serve import api, pages
from mm_broker.app.serve.guard import Guard, RateLimiter
from mm_broker.core.config import Settings, secret
from mm_broker.core.db.migrate import engine_for

log = logging.getLogger("mm_broker.serve")

HERE = Path(__file__).resolve().parent


def _message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "path"))
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "invalid parameter: " + "; ".join(parts)


def _problem(request: Request, status: int, message: str) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"status": status, "message": message}, status_code=status)
    return pages.error_page(request, status, message)


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """The portal's ASGI application.

    Parameters
    ----------
    settings : Settings
        The configuration (``[serve]``, the store, the archive).
    engine : sqlalchemy.Engine, optional
        The store (default: :func:`mm_broker.core.db.migrate.engine_for`).

    Returns
    -------
    FastAPI
        With ``state.settings`` and ``state.engine``.
    """
    s = settings.serve
    app = FastAPI(title="mm_broker portal API", version=__version__,
                  description="Events, regions and counterpart candidates of mm_broker "
                              "(read-only). Lists are arrays; pagination in the "
                              "X-Total-Count and Link headers; errors are "
                              '{"status", "message"}.',
                  openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.engine = engine or engine_for(settings)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _problem(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        return _problem(request, 422, _message(exc))

    @app.exception_handler(OperationalError)
    async def store_away(request: Request, exc: OperationalError) -> Response:
        log.error("store unavailable: %s", type(exc.orig or exc).__name__)
        return _problem(request, 503, "the store is unavailable")

    @app.exception_handler(Exception)
    async def failure(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _problem(request, 500, "internal error (logged on the server)")

    if s.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(s.cors_origins),
                           allow_methods=["GET"], allow_headers=["Authorization"],
                           expose_headers=["X-Total-Count", "Link"])
    token = secret(s.token_env) if s.token_env else None
    app.add_middleware(Guard, max_bytes=s.max_request_bytes,
                       limiter=RateLimiter(s.rate_limit_per_min, s.rate_limit_burst),
                       token=token)
    return app


def describe(settings: Settings) -> dict[str, Any]:
    """What ``mm-broker serve`` prints when it starts (no secret)."""
    s = settings.serve
    return {"url": f"http://{s.host}:{s.port}/", "api": f"http://{s.host}:{s.port}/api/v1/",
            "openapi": f"http://{s.host}:{s.port}/api/v1/openapi.json",
            "cors": list(s.cors_origins) or "off",
            "rate_limit_per_min": s.rate_limit_per_min or "off",
            "writes": "token required" if s.token_env and secret(s.token_env) else "refused"}
