"""Official sky maps linked by a notice: fetch, keep, and let the team's map win.

Parsers stay pure (``bytes -> Notice``): a notice that links its mission's map
(LVK ``skymap_fits``, GCN JSON ``healpix_url``, Fermi GBM ``HealPix_URL`` and the
final positions' ``glg_healpix_all``) carries the URL as
:attr:`~mm_broker.core.models.Notice.skymap_url`. The application floor resolves it
here, before the region is built:

* :func:`with_official_map` — the rule: when the map is obtained and gives a region,
  it **replaces** the notice's circle, ellipse or box (the team's map, with its
  systematics and its shape, wins); when it cannot be obtained or read, a notice with
  another localisation keeps it (the outcome's reason names the fallback and why),
  and a notice with only the URL is rejected with a :class:`SkymapFetchError` whose
  ``retryable`` flag says whether trying later may help;
* :func:`~mm_broker.app.skymap_http.fetch_bytes` — one HTTP(S) fetch under a
  :class:`~mm_broker.app.skymap_http.FetchPolicy`: ``https`` only
  (plain ``http`` to an allowed host is upgraded to ``https`` unless the host is also
  in ``fetch_http_hosts``), hosts from an allowlist (exact names, or ``.suffix`` for a
  domain), every redirect checked against the same rules, a size limit
  (``skymaps.max_bytes``, checked on ``Content-Length`` and while reading), a time
  limit for the whole request, ``text/*`` bodies (error pages) and non-FITS bodies
  refused, retries with exponential back-off for timeouts, dropped or truncated
  transfers and 5xx/429 answers only;
* :class:`MapCache` — a cache under the state directory, one file per map named by
  the URL's sha256 and the content's sha256 (a file whose bytes no longer match its
  name is ignored);
* :func:`journal_map` / :func:`journaled_map` — the fetched bytes kept in the raw
  journal (``source = "skymap"``, ``topic`` = the URL, ``status = "skymap"``, never
  parsed as a notice): the raw payload is never lost, and reprocessing reads the
  journal, never the network again;
* :func:`store_getter` (ingest: journal, then cache, then network) and
  :func:`local_getter` (replay: a file of the data directory with the URL's file
  name, then the cache; no network, so a replay stays deterministic and offline).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from mm_broker.app.skymap_http import FetchPolicy, fetch_bytes, fits_object, looks_like_fits
from mm_broker.core.db.schema import raw_journal
from mm_broker.core.errors import NoticeError, SkymapFetchError
from mm_broker.core.models import Notice, Region, SkyMap

#: ``raw_journal.source`` and ``status`` of a fetched map.
JOURNAL_SOURCE = "skymap"

#: ``(bytes, where they came from)`` for a notice's map URL, or
#: :class:`SkymapFetchError`.
MapGetter = Callable[[str, Notice], tuple[bytes, str]]


class MapCache:
    """Fetched maps on disk, ``<sha256(url)>-<sha256(bytes)>.fits`` under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @staticmethod
    def key(url: str) -> str:
        """The URL part of a cached file's name."""
        return hashlib.sha256(url.encode()).hexdigest()

    def get(self, url: str) -> bytes | None:
        """The cached bytes of ``url`` whose content still matches its name."""
        key = self.key(url)
        if not self.root.is_dir():
            return None
        for path in sorted(self.root.iterdir()):
            if path.name.startswith(f"{key}-") and path.suffix == ".fits":
                data = path.read_bytes()
                if hashlib.sha256(data).hexdigest() == path.stem.split("-", 1)[1]:
                    return data
        return None

    def put(self, url: str, data: bytes) -> Path:
        """Store ``data`` for ``url`` (atomically: written aside, then renamed)."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f"{self.key(url)}-{hashlib.sha256(data).hexdigest()}.fits"
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        tmp.replace(path)
        return path


def journal_map(conn: Connection, url: str, data: bytes,
                received_at: datetime | None = None) -> int:
    """Keep fetched bytes in the raw journal (never parsed as a notice); its row id."""
    at = received_at or datetime.now(UTC)
    stmt = pg_insert(raw_journal).values(
        sha256=hashlib.sha256(data).hexdigest(), payload=data, size=len(data),
        source=JOURNAL_SOURCE, topic=url, received_at=at, last_received_at=at,
        status=JOURNAL_SOURCE,
    ).on_conflict_do_update(
        index_elements=[raw_journal.c.sha256],
        set_={"receipts": raw_journal.c.receipts + 1, "last_received_at": at},
    ).returning(raw_journal.c.id)
    return int(conn.execute(stmt).scalar_one())


def journaled_map(conn: Connection, url: str) -> bytes | None:
    """The newest map journaled for ``url``."""
    row = conn.execute(
        select(raw_journal.c.payload)
        .where(raw_journal.c.source == JOURNAL_SOURCE, raw_journal.c.topic == url)
        .order_by(raw_journal.c.id.desc()).limit(1)).scalar_one_or_none()
    return None if row is None else bytes(row)


def _network(url: str, policy: FetchPolicy, cache: MapCache | None) -> tuple[bytes, str]:
    if cache is not None:
        cached = cache.get(url)
        if cached is not None:
            return cached, "cache"
    data = fetch_bytes(url, policy)
    if cache is not None:
        cache.put(url, data)
    return data, "network"


def store_getter(engine: Engine, policy: FetchPolicy, cache: MapCache | None) -> MapGetter:
    """Ingest's way to a map: the journal, else the cache, else the network; a map
    not read from the journal is journaled."""

    def get(url: str, notice: Notice) -> tuple[bytes, str]:
        with engine.connect() as conn:
            kept = journaled_map(conn, url)
        if kept is not None:
            return kept, "journal"
        data, source = _network(url, policy, cache)
        with engine.begin() as conn:
            journal_map(conn, url, data)
        return data, source

    return get


def local_name(url: str) -> str:
    """The file name a URL points at, without GraceDB's ``,<version>`` suffix.

    Examples
    --------
    >>> local_name("https://gracedb.ligo.org/api/superevents/MS1/files/bayestar.multiorder.fits,0")
    'bayestar.multiorder.fits'
    """
    path = urlsplit(url).path if "://" in url else url
    name = path.rstrip("/").rsplit("/", 1)[-1]
    head, sep, tail = name.rpartition(",")
    return head if sep and tail.isdigit() else name


def local_getter(data_dir: Path, cache: MapCache | None = None,
                 policy: FetchPolicy | None = None) -> MapGetter:
    """Replay's way to a map: a FITS file of ``data_dir`` (searched recursively) for
    the URL (:func:`local_match`), else the cache, else — only when ``policy`` is
    given — the network.

    Replay passes no policy: its outputs depend on its inputs only, and the demo
    night and the tests run offline, the real maps of the data directory standing
    for the URLs that name them (a map fetched by ingest earlier is in the cache).
    """
    files = sorted(p for p in data_dir.rglob("*") if p.is_file()
                   and looks_like_fits_name(p.name)) if data_dir.is_dir() else []

    def get(url: str, notice: Notice) -> tuple[bytes, str]:
        found = local_match(url, notice, files)
        if found is not None:
            return found[1], f"local file {found[0].name}"
        if policy is not None:
            return _network(url, policy, cache)
        cached = None if cache is None else cache.get(url)
        if cached is not None:
            return cached, "cache"
        raise SkymapFetchError(f"{url}: no file for {local_name(url)!r} of "
                               f"{notice.event_id} under the data directory nor in the map "
                               "cache (replay does not fetch)")

    return get


def local_match(url: str, notice: Notice, files: Iterable[Path]) -> tuple[Path, bytes] | None:
    """The local map standing for ``url``: a file named as the URL's file
    (:func:`local_name`), or ending in ``_<that name>`` (the data directory prefixes
    maps with their event). Many events' maps share one name (GraceDB's
    ``bayestar.multiorder.fits``), so a name without a trigger number in it (a run of
    six digits or more, as in ``glg_healpix_all_bn180116026.fit``) is not enough: the
    file's ``OBJECT`` card, or its name, must then name the notice's event.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> from mm_broker.core.models import Messenger, Role
    >>> t = datetime(2018, 11, 1, tzinfo=UTC)
    >>> n = Notice("LVK:MS1", Messenger.GW, "LVK", "H1", "INITIAL", Role.TEST, t, t, 1,
    ...            False, None)
    >>> local_match("https://a/files/m.fits,0", n, []) is None
    True
    """
    name = local_name(url)
    distinctive = re.search(r"\d{6,}", name) is not None
    event = notice.event_id.split(":", 1)[-1]
    for path in files:
        if path.name != name and not path.name.endswith(f"_{name}"):
            continue
        if distinctive or event in path.name:
            return path, path.read_bytes()
        data = path.read_bytes()
        if fits_object(data) == event:
            return path, data
    return None


def looks_like_fits_name(name: str) -> bool:
    """A FITS file name (``.fits``, ``.fit``, ``.fts``, possibly ``.gz``)."""
    return name.lower().removesuffix(".gz").endswith((".fits", ".fit", ".fts"))


def _kind(notice: Notice) -> str:
    return type(notice.localisation).__name__.lower() if notice.localisation else "none"


def with_official_map(notice: Notice, get_map: MapGetter,
                      region_of: Callable[[Notice], Region | None],
                      ) -> tuple[Notice, Region | None, str | None]:
    """Apply the official-map rule to one parsed notice (module docstring).

    Parameters
    ----------
    notice : Notice
    get_map : callable
        ``url -> (bytes, source)`` (:func:`store_getter`, :func:`local_getter`).
    region_of : callable
        Builds the region of a notice (the caller's sky-map limits).

    Returns
    -------
    notice : Notice
        With the fetched map as its localisation when it won.
    region : Region or None
        Its region (``None`` for a retraction).
    note : str or None
        What was done with the link, for the outcome's reason.

    Raises
    ------
    NoticeError
        :class:`SkymapFetchError` when the map is the only localisation and cannot
        be fetched; the region's error when it is read but unusable; the region's
        error of the notice itself otherwise.
    """
    url = notice.skymap_url
    loc = notice.localisation
    embedded = isinstance(loc, SkyMap) and loc.data is not None
    if url is None or notice.retraction or loc is None or embedded:
        return notice, None if notice.retraction else region_of(notice), None
    only_link = isinstance(loc, SkyMap)
    try:
        data, source = get_map(url, notice)
        mapped = replace(notice, localisation=SkyMap(
            data=data, url=url, convention=loc.convention if only_link else "official_map",
        ), extra={**notice.extra, "skymap_source": source,
                  "skymap_sha256": hashlib.sha256(data).hexdigest(),
                  **({} if only_link else {"replaced_localisation": _kind(notice)})})
        region = region_of(mapped)
    except SkymapFetchError as exc:
        if only_link:
            later = "; retryable" if exc.retryable else ""
            raise SkymapFetchError(f"official map not fetched, the notice has no other "
                                   f"localisation: {exc.message}{later}",
                                   retryable=exc.retryable) from None
        return notice, region_of(notice), (f"official map not fetched ({exc.message}); "
                                           f"fallback to the notice's {_kind(notice)}")
    except NoticeError as exc:
        if only_link:
            raise
        return notice, region_of(notice), (f"official map unusable ({exc}); fallback to "
                                           f"the notice's {_kind(notice)}")
    how = "" if only_link else f", replaces the notice's {_kind(notice)}"
    return mapped, region, f"official map {local_name(url)} from {source}{how}"


__all__ = ["FetchPolicy", "MapCache", "fetch_bytes", "fits_object", "journal_map",
           "journaled_map", "local_getter", "local_match", "local_name", "looks_like_fits",
           "store_getter", "with_official_map"]
