"""``mm-broker serve``: the portal (web pages) and the REST API over the store and the
alert archive.

Stack, and why
--------------
* **FastAPI** (on Starlette) for the API: the query parameters are typed and validated
  from their annotations (a malformed coordinate is a 422 by construction), and the
  OpenAPI document at ``/api/v1/openapi.json`` is generated from the same code, so it
  cannot drift from the routes.
* **Jinja2** for the pages, rendered on the server from the same views as the API:
  the tables read without JavaScript and the HTML escapes every value.
* **uvicorn** as the ASGI server (one process, bound to ``serve.host``; behind a
  reverse proxy in production).
* The sky map and the light curve are SVG drawn by two small vanilla-JS files of
  ``static/`` (no framework, no CDN): the pages work with no network at all. Aladin
  Lite or Bokeh would bring a JavaScript bundle to serve and keep up to date for
  what a few hundred lines do here; survey backgrounds (HiPS) are left out for the
  same reason (they need the network).

Modules: :mod:`.app` (the factory), :mod:`.guard` (limits, token, headers),
:mod:`.api` (``/api/v1``), :mod:`.pages` (HTML), :mod:`.views` (what both show),
:mod:`.queries` (SQL), :mod:`.sky` (cone search, map geometry), :mod:`.objects`
(light curves and stamps from the archive), :mod:`.formats` (CSV, VOTable),
:mod:`.health`, :mod:`.schemas` (response models).
"""
